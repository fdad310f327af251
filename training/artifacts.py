"""Export a style package's generator beyond TorchScript: ``torch.export`` programs and ONNX.

TorchScript stays the package's ``model_file`` (the card and TorchServe load it); torch has
deprecated it in favour of ``torch.export``, so a package can carry beside it:

- ``pt2``: a ``torch.export`` program per method (``torch.export.save``), batch, height and width
  free (:func:`sdk.programs.dynamic_shapes`). The compiled runner (:mod:`sdk.runners`) builds
  its ahead-of-time kernels from it; any torch program can load it with ``torch.export.load``;
- ``onnx``: the same program translated by torch's ONNX exporter (opset :data:`ONNX_OPSET`),
  for onnxruntime, TensorRT and other runtimes.

A TorchScript file cannot be turned into a program directly (torch's converter refuses the
generators' loops), so the eager network is rebuilt from the architecture the package records
and loaded with the TorchScript file's weights (:func:`eager_network`). Every file is checked
against that eager network on real pictures when it is written (the bound of
:func:`sdk.programs.difference`); a file that misses it is not written. The manifest records
each file's format, method, the torch that wrote it and the difference measured.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from sdk import imaging, programs
from sdk._fs import atomic_write
from sdk.errors import BadOptionError, StylePackageError
from sdk.extras import require
from sdk.package import ARTIFACT_FORMATS, Artifact, StylePackage, read_package, sha256_file
from training.generator import TransformerNet

log = logging.getLogger(__name__)

ONNX_OPSET = 18
# Verification pictures are brought to this longest side: big enough for a real picture's
# statistics, small enough that checking three formats stays a few seconds.
VERIFY_SIDE = 384


# --------------------------------------------------------------------------- eager networks


def eager_network(package: StylePackage) -> nn.Module:
    """The package's generator as an eager ``nn.Module``, weights from its TorchScript file.

    Multistyle packages are :class:`~training.pretrained.multistyle.MultiStyleNet`, arbitrary
    ones :class:`~training.pretrained.arbitrary.ArbitraryStylizer`, feedforward ones the
    Johnson generator (:class:`~training.generator.TransformerNet`, width and residual blocks
    read from the weights). A package of another architecture is refused by name.
    """
    state = package.load_module(map_location="cpu").state_dict()
    manifest = package.manifest
    net: nn.Module
    if manifest.kind == "multistyle":
        from training.pretrained.multistyle import MultiStyleNet

        if "contract.0.gamma" not in state:
            raise StylePackageError(f"Style {manifest.name!r}: its network is not one stylekit can rebuild.")
        net = MultiStyleNet(int(state["contract.0.gamma"].shape[0]))
    elif manifest.kind == "arbitrary":
        from training.pretrained.arbitrary import ArbitraryStylizer

        net = ArbitraryStylizer()
    else:
        generator = dict((manifest.training or {}).get("generator") or {})
        architecture = generator.get("architecture", "johnson2016")
        if architecture != "johnson2016" or "residual.0.conv1.conv.weight" not in state:
            raise StylePackageError(
                f"Style {manifest.name!r}: its generator is not one stylekit can rebuild for export "
                f"(architecture {architecture!r}); only TorchScript is available for it."
            )
        blocks = len({k.split(".")[1] for k in state if k.startswith("residual.")})
        width = float(generator.get("width") or state["residual.0.conv1.conv.weight"].shape[0] / 128)
        net = TransformerNet(width, residual_blocks=blocks)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise StylePackageError(
            f"Style {manifest.name!r}: its weights do not fit the {type(net).__name__} network ({first})."
        ) from exc
    return net.eval()


def _method_owner(net: nn.Module, method: str) -> nn.Module:
    """The smallest module holding ``method``: a program keeps every weight of what it exports,
    and an arbitrary stylizer's two methods use disjoint halves of it."""
    part = {"style_vector": "predictor", "transfer": "transformer"}.get(method)
    sub = getattr(net, part, None) if part else None
    return _Method(sub, "forward") if isinstance(sub, nn.Module) else _Method(net, method)


class _Method(nn.Module):
    """One method of a generator as ``forward``: what ``torch.export`` exports."""

    def __init__(self, net: nn.Module, method: str) -> None:
        super().__init__()
        self.net = net
        self.method = method

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = getattr(self.net, self.method)(*args)
        return out


# --------------------------------------------------------------------------- programs


def export_program(package: StylePackage, net: nn.Module, method: str) -> torch.export.ExportedProgram:
    """``net``'s ``method`` as a ``torch.export`` program with the kind's free sizes."""
    manifest = package.manifest
    module = net if method == "forward" else _method_owner(net, method)
    args = programs.example_inputs(manifest, method)
    spec = programs.dynamic_shapes(manifest, method)
    try:
        with torch.no_grad():
            return torch.export.export(module, args, dynamic_shapes=spec, strict=False)
    except Exception as exc:  # export raises many types (UserError, guard failures, ...)
        raise StylePackageError(
            f"Style {manifest.name!r}: torch.export failed for {method} ({exc})."
        ) from exc


def verification_images(photos: Sequence[str | os.PathLike[str]] = ()) -> list[tuple[str, torch.Tensor]]:
    """The pictures every export is checked on: ``photos`` (decoded with ``sdk.imaging``) and the
    built-in sample landscape, each at most :data:`VERIFY_SIDE` px, as [1, 3, H, W] floats."""
    from sdk.web.sample import landscape

    found: list[tuple[str, np.ndarray]] = [("sample landscape", landscape(256))]
    for photo in photos:
        decoded = imaging.resize_max_side(imaging.decode(Path(photo)), VERIFY_SIDE)
        found.append((Path(photo).name, decoded.rgb))
    return [(name, imaging.to_tensor(rgb)) for name, rgb in found]


def _method_args(
    package: StylePackage, net: nn.Module, method: str, image: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Real inputs of ``method`` for one picture: padded to the multiple, with a style choice."""
    manifest = package.manifest
    x, _ = imaging.pad_to_multiple(image, max(1, manifest.input.multiple), min_side=imaging.MIN_MODEL_SIDE)
    if method == "style_vector":
        side = int(manifest.input.style_image_size or 256)
        return (torch.nn.functional.interpolate(image, size=(side, side), mode="bilinear", antialias=True),)
    if method == "transfer":
        side = int(manifest.input.style_image_size or 256)
        style = torch.nn.functional.interpolate(
            image.flip(-1), size=(side, side), mode="bilinear", antialias=True
        )
        with torch.no_grad():
            return (x, net.style_vector(style))  # type: ignore[operator]
    if manifest.kind == "multistyle":
        styles = max(s.index for s in manifest.styles) + 1
        row = torch.zeros(1, styles)
        row[0, manifest.styles[0].index] = 0.7
        row[0, manifest.styles[-1].index] += 0.3
        return (x, row)
    return (x,)


def _check(package: StylePackage, net: nn.Module, file: str, method: str, candidate: Any,
           images: list[tuple[str, torch.Tensor]]) -> dict[str, Any]:  # fmt: skip
    """``candidate`` vs the eager ``net``'s ``method`` on every picture: the worst difference, or
    StylePackageError past the bound."""
    worst = programs.Difference(0.0, 0.0)
    reference = getattr(net, method)
    for name, image in images:
        args = _method_args(package, net, method, image)
        with torch.no_grad():
            diff = programs.difference(reference(*args), candidate(*args))
        if not diff.within_bound:
            raise StylePackageError(
                f"Style {package.manifest.name!r}: {file} differs from the eager network on {name} "
                f"(mean {diff.mean:.3f}/255, max {diff.max:.3f}/255; the bound is "
                f"{programs.MEAN_BOUND_255}/255 and {programs.MAX_BOUND_255}/255)."
            )
        worst = programs.Difference(max(worst.mean, diff.mean), max(worst.max, diff.max))
    return {"images": [name for name, _ in images], **worst.to_dict()}


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    """torch.export and the ONNX exporter warn and print progress; a CLI user needs neither."""
    torch_log = logging.getLogger("torch")
    level = torch_log.level
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            torch_log.setLevel(level)  # the caller's logging, as it was


def _write_pt2(program: torch.export.ExportedProgram, path: Path) -> None:
    atomic_write(path, lambda fh: torch.export.save(program, fh))


def _write_onnx(program: torch.export.ExportedProgram, path: Path, names: tuple[str, ...]) -> None:
    with tempfile.TemporaryDirectory(prefix="stylekit-onnx-") as tmp:
        out = Path(tmp) / path.name
        onnx_program = torch.onnx.export(
            program, (), dynamo=True, opset_version=ONNX_OPSET, input_names=list(names),
            output_names=["output"], verbose=False, external_data=False,
        )  # fmt: skip
        if onnx_program is None:  # pragma: no cover - the dynamo exporter always returns one
            raise StylePackageError("torch.onnx.export returned nothing.")
        onnx_program.save(str(out))
        atomic_write(path, out.read_bytes())


def _onnx_runner(path: Path, names: tuple[str, ...]) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(*args: torch.Tensor) -> torch.Tensor:
        feed = {name: a.numpy() for name, a in zip(names, args, strict=True)}
        return torch.from_numpy(session.run(None, feed)[0])

    return run


# --------------------------------------------------------------------------- packages


def parse_formats(values: Sequence[str]) -> tuple[str, ...]:
    """``--format`` values (each a format, ``all``, or a comma list) as a tuple in canonical order."""
    wanted: set[str] = set()
    for value in values or ("torchscript",):
        for part in str(value).split(","):
            part = part.strip().lower()
            if part == "all":
                wanted.update(ARTIFACT_FORMATS)
            elif part in ARTIFACT_FORMATS:
                wanted.add(part)
            else:
                raise BadOptionError(
                    f"Unknown export format {part!r}; choose from {', '.join(ARTIFACT_FORMATS)} or all."
                )
    return tuple(f for f in ARTIFACT_FORMATS if f in wanted)


def copy_package(package: StylePackage, out_dir: str | os.PathLike[str]) -> StylePackage:
    """Copy a package's pinned files and manifest into ``out_dir`` (each checked against its sha256)."""
    package.verify()
    root = Path(out_dir)
    if root.resolve() == package.root.resolve():
        return package
    root.mkdir(parents=True, exist_ok=True)
    for file in package.manifest.files:
        atomic_write(root / file, (package.root / file).read_bytes())
    manifest_file = (root / package.manifest.model_file).with_suffix(".json")
    atomic_write(manifest_file, package.manifest.to_json())
    return read_package(manifest_file)


def export_package(
    package: StylePackage,
    formats: Sequence[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    photos: Sequence[str | os.PathLike[str]] = (),
) -> StylePackage:
    """Add ``formats`` (``pt2``, ``onnx``; ``torchscript`` is always there) to a package.

    Writes into ``out_dir`` (a copy of the package is made there first) or, when None, into
    the package's own folder. Each file is verified on :func:`verification_images` before it
    is pinned in the manifest; the manifest is rewritten last, atomically, so a failed export
    leaves the package as it was.
    """
    formats = parse_formats(formats)
    if "onnx" in formats:
        require("export", "stylekit export --format onnx")
    target = copy_package(package, out_dir) if out_dir is not None else package
    target.verify()
    manifest = target.manifest
    images = verification_images(photos)
    net = eager_network(target)
    artifacts = dict(manifest.artifacts) or {manifest.model_file: Artifact("torchscript")}
    files = dict(manifest.files)
    scripted = target.load_module()
    for method in programs.METHODS[manifest.kind]:
        artifacts[manifest.model_file] = Artifact(
            "torchscript", torch=artifacts[manifest.model_file].torch,
            verified=_check(target, net, manifest.model_file, method, getattr(scripted, method), images),
        )  # fmt: skip
        wanted = [f for f in formats if f != "torchscript"]
        if not wanted:
            continue
        with _quiet_exporters():
            program = export_program(target, net, method)
        names = programs.input_names(manifest, method)
        for fmt in wanted:
            file = programs.program_file(manifest, fmt, method)
            path = target.root / file
            with _quiet_exporters():
                if fmt == "pt2":
                    _write_pt2(program, path)
                    candidate = torch.export.load(str(path)).module()
                    opset = None
                else:
                    _write_onnx(program, path, names)
                    candidate = _onnx_runner(path, names)
                    opset = ONNX_OPSET
            try:
                verified = _check(target, net, file, method, candidate, images)
            except StylePackageError:
                path.unlink(missing_ok=True)
                raise
            artifacts[file] = Artifact(
                fmt, method=method, torch=torch.__version__, opset=opset, verified=verified
            )
            files[file] = sha256_file(path)
            log.info(
                "exported %s of %s as %s (max %.3f/255)", method, manifest.name, file, verified["max_255"]
            )
    manifest.files = files
    manifest.artifacts = artifacts
    manifest_file = (target.root / manifest.model_file).with_suffix(".json")
    atomic_write(manifest_file, manifest.to_json())
    return read_package(manifest_file)


def installed_copy_needed(package: StylePackage) -> bool:
    """Whether ``package`` lives inside an installed distribution (site-packages or the checkout's
    ``sdk/styles``), which an export must not change in place."""
    root = package.root.resolve()
    builtin = Path(__file__).resolve().parents[1] / "sdk" / "styles"
    return root == builtin or bool(re.search(r"[/\\](site|dist)-packages[/\\]", str(root)))


__all__ = [
    "ONNX_OPSET",
    "VERIFY_SIDE",
    "copy_package",
    "eager_network",
    "export_package",
    "export_program",
    "installed_copy_needed",
    "parse_formats",
    "verification_images",
]
