"""The kinds' call signatures as ``torch.export`` programs, and the error bound of faster paths.

A ``pt2`` or ``onnx`` file holds one method of a generator. This module says, once, for the
exporter (``training.artifacts``) and for the compiled runner (:mod:`sdk.runners`):

- which methods each kind has (:data:`METHODS`) and what they take (:func:`example_inputs`);
- which input sizes stay free in a program (:func:`dynamic_shapes`): the batch, and the height
  and width as any multiple of the package's ``input.multiple``;
- how far a faster path may stray from the float32 network (:func:`within_bound`): mean
  absolute difference <= 0.5/255 and max <= 4/255 per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sdk.package import Kind, Manifest

if TYPE_CHECKING:
    import torch

#: kind -> its methods, in the order a request uses them.
METHODS: dict[Kind, tuple[str, ...]] = {
    "feedforward": ("forward",),
    "multistyle": ("forward",),
    "arbitrary": ("style_vector", "transfer"),
}

#: The default bound of every faster path, in 1/255 units, per image.
MEAN_BOUND_255 = 0.5
MAX_BOUND_255 = 4.0

# The largest side a program accepts, in units of the multiple: 32768 px at multiple 4.
_MAX_UNITS = 8192
# Example sizes: a batch of 2 and a non-square image, so no size is specialised to 1 or made
# equal to another by the tracer.
_BATCH, _H_UNITS, _W_UNITS = 2, 16, 24


def program_file(manifest: Manifest, format: str, method: str) -> str:
    """A package's ``format`` file for ``method``: ``stem.pt2``, ``stem.transfer.onnx``, ..."""
    stem = manifest.model_file.rsplit(".", 1)[0]
    middle = "" if method == "forward" else f".{method}"
    return f"{stem}{middle}.{format}"


def input_names(manifest: Manifest, method: str) -> tuple[str, ...]:
    """The method's input names (ONNX graph inputs; the TorchScript argument names)."""
    if manifest.kind == "multistyle":
        return ("image", "style_weights")
    if method == "style_vector":
        return ("style_image",)
    if method == "transfer":
        return ("image", "vector")
    return ("image",)


def style_dim(manifest: Manifest) -> int:
    """An arbitrary style's vector length (the built-in's is 100), from the manifest's record."""
    return int(manifest.source.get("style_dim", 100)) if manifest.kind == "arbitrary" else 0


def example_inputs(
    manifest: Manifest, method: str, device: Any = "cpu", dtype: Any = None
) -> tuple[torch.Tensor, ...]:
    """Deterministic inputs of the method's signature, sized as :func:`dynamic_shapes` expects."""
    import torch

    dtype = dtype or torch.float32
    g = torch.Generator().manual_seed(0)
    m = max(1, manifest.input.multiple)
    image = torch.rand(_BATCH, 3, _H_UNITS * m, _W_UNITS * m, generator=g)
    if method == "style_vector":
        side = int(manifest.input.style_image_size or 256)
        args: tuple[torch.Tensor, ...] = (torch.rand(_BATCH, 3, side, side, generator=g),)
    elif method == "transfer":
        args = (image, torch.rand(_BATCH, style_dim(manifest), generator=g))
    elif manifest.kind == "multistyle":
        styles = max(s.index for s in manifest.styles) + 1
        args = (image, torch.softmax(torch.randn(_BATCH, styles, generator=g), dim=1))
    else:
        args = (image,)
    return tuple(a.to(device, dtype) for a in args)


def dynamic_shapes(manifest: Manifest, method: str) -> tuple[Any, ...]:
    """``torch.export`` dynamic shapes of the method: batch free; image sides any multiple.

    A method other than ``forward`` is exported as a module whose ``forward(*args)`` calls it,
    so its arguments' shapes nest in one tuple (what ``torch.export`` expects for ``*args``).
    """
    from torch.export import Dim

    batch = Dim("batch", min=1, max=4096)
    if method == "style_vector":
        return (({0: batch},),)
    m = max(1, manifest.input.multiple)
    h = Dim("h_units", min=1, max=_MAX_UNITS)
    w = Dim("w_units", min=1, max=_MAX_UNITS)
    image = {0: batch, 2: m * h, 3: m * w} if m > 1 else {0: batch, 2: h, 3: w}
    args = (image,) if manifest.kind == "feedforward" else (image, {0: batch})
    return args if method == "forward" else (args,)


@dataclass(frozen=True)
class Difference:
    """How far one output is from the reference, in 1/255 units (worst image of the batch)."""

    mean: float
    max: float

    @property
    def within_bound(self) -> bool:
        return self.mean <= MEAN_BOUND_255 and self.max <= MAX_BOUND_255

    def to_dict(self) -> dict[str, float]:
        return {"mean_255": round(self.mean, 5), "max_255": round(self.max, 5)}


def difference(reference: torch.Tensor, candidate: torch.Tensor) -> Difference:
    """Mean and max |reference - candidate| * 255 of the worst image (NaN counts as out of bound)."""

    if reference.shape != candidate.shape:
        return Difference(float("inf"), float("inf"))
    diff = (reference.detach().float() - candidate.detach().float()).abs().mul_(255).nan_to_num_(float("inf"))
    per_image = diff.flatten(1)
    return Difference(float(per_image.mean(dim=1).max()), float(per_image.max()))


__all__ = [
    "MAX_BOUND_255",
    "MEAN_BOUND_255",
    "METHODS",
    "Difference",
    "difference",
    "dynamic_shapes",
    "example_inputs",
    "input_names",
    "program_file",
    "style_dim",
]
