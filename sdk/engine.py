"""The local inference engine: load a resolved style's generator once, run it on images.

:class:`Engine` picks the device (``auto`` = cuda > mps > cpu), the dtype (float16 on CUDA
where the package allows it), caches loaded generators per (package file, device, dtype), and
runs images whole or, above a pixel budget, in blended tiles (:func:`sdk.imaging.run_tiled`).
All image work (decode, pad, tile, colour, alpha, resize) is :mod:`sdk.imaging`'s.

The model-kind wrappers (:class:`FeedforwardModel`, :class:`MultistyleModel`,
:class:`ArbitraryModel`) know each kind's TorchScript call signature and turn a style choice
into a plain ``tile -> tile`` function, so whole-image, tiled and batched runs share one path.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from sdk import imaging, runners
from sdk.devices import resolve_device
from sdk.errors import BadOptionError, StylePackageError
from sdk.imaging import DecodedImage, ImageInput, ImageLimits
from sdk.package import Kind, ResolvedStyle, StylePackage
from sdk.wire import StyleRequest

log = logging.getLogger(__name__)

TileFn = Callable[[torch.Tensor], torch.Tensor]


# --------------------------------------------------------------------------- model kinds


class StyleModel:
    """A loaded generator on one device and dtype; subclasses know the kind's call signature."""

    kind: ClassVar[Kind]

    def __init__(self, module: Any, package: StylePackage, device: torch.device, dtype: torch.dtype) -> None:
        self.module = module
        # "compiled" (sdk.runners) or "torchscript": what runs this model, for logs and benchmarks.
        self.runner: str = getattr(module, "runner", "torchscript")
        self.package = package
        self.device = device
        self.dtype = dtype
        self.multiple = max(1, int(package.manifest.input.multiple))

    @property
    def name(self) -> str:
        return self.package.manifest.name

    def _to_device(self, x: torch.Tensor) -> torch.Tensor:
        # Plain NCHW: channels_last was measured 1.3-2.7x slower on CPU for the built-in generator
        # (benchmarks/big_image_memory.py --channels-last) and has not been measured on a GPU.
        if self.device.type == "cuda":
            # A page-locked copy lets the host-to-device copy run asynchronously.
            x = x.pin_memory()
        return x.to(self.device, self.dtype, non_blocking=True)

    def _from_device(self, y: torch.Tensor) -> torch.Tensor:
        if not isinstance(y, torch.Tensor) or y.dim() != 4:
            raise StylePackageError(f"Style {self.name!r}: the generator did not return [N, 3, H, W]")
        return y.to("cpu", torch.float32).contiguous()


class FeedforwardModel(StyleModel):
    """``forward(image) -> image``: one network, one style."""

    kind = "feedforward"

    def bind(self) -> TileFn:
        def run(x: torch.Tensor) -> torch.Tensor:
            return self._from_device(self.module(self._to_device(x)))

        return run


class MultistyleModel(StyleModel):
    """``forward(image, style_weights[N, S]) -> image``: a row of weights blends sub-styles."""

    kind = "multistyle"

    @property
    def num_styles(self) -> int:
        return max(s.index for s in self.package.manifest.styles) + 1

    def bind(self, weights: Sequence[float]) -> TileFn:
        if len(weights) != self.num_styles:
            raise BadOptionError(f"Style {self.name!r} takes {self.num_styles} weights, not {len(weights)}.")
        row = torch.tensor([list(weights)], dtype=self.dtype, device=self.device)

        def run(x: torch.Tensor) -> torch.Tensor:
            return self._from_device(self.module(self._to_device(x), row.expand(x.shape[0], -1)))

        return run


class ArbitraryModel(StyleModel):
    """``style_vector(style_image)`` once per request, then ``transfer(image, vector)`` per tile.

    The content image runs at its own resolution (tiled when large); only the style image is
    brought to ``input.style_image_size`` (shorter side resized, then centre-cropped square).
    """

    kind = "arbitrary"

    @property
    def style_size(self) -> int:
        return int(self.package.manifest.input.style_image_size or 256)

    def style_vector(self, style: DecodedImage) -> torch.Tensor:
        side = self.style_size
        im = Image.fromarray(style.rgb, "RGB")
        w, h = im.size
        scale = side / min(w, h)
        size = (max(side, round(w * scale)), max(side, round(h * scale)))
        im = im.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
        left, top = (size[0] - side) // 2, (size[1] - side) // 2
        square = np.asarray(im.crop((left, top, left + side, top + side)))
        vector = self.module.style_vector(self._to_device(imaging.to_tensor(square)))
        if not isinstance(vector, torch.Tensor) or vector.dim() != 2:
            raise StylePackageError(f"Style {self.name!r}: style_vector() did not return an [N, D] tensor.")
        return vector

    def bind(self, vector: torch.Tensor) -> TileFn:
        def run(x: torch.Tensor) -> torch.Tensor:
            return self._from_device(self.module.transfer(self._to_device(x), vector.expand(x.shape[0], -1)))

        return run


_MODEL_CLASSES: dict[str, type[StyleModel]] = {
    "feedforward": FeedforwardModel,
    "multistyle": MultistyleModel,
    "arbitrary": ArbitraryModel,
}


# --------------------------------------------------------------------------- engine


@dataclass(frozen=True)
class _Job:
    """Everything one request needs after validation: the bound model and the options."""

    model: StyleModel
    fn: TileFn
    strength: float
    preserve_color: bool
    max_side: int | None
    scale: float


@dataclass(frozen=True)
class _Plan:
    """One request ready to run: its style's job, the ``outside`` style's job, the read mask."""

    job: _Job
    outside: _Job | None
    mask: np.ndarray | None  # HxW uint8 at the mask's own size (imaging.read_mask)


class Engine:
    """Runs style packages locally; thread-safe, keeps loaded generators cached.

    ``device``: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N``, ``mps``.
    ``half``: float16 inference; ``None`` = on CUDA where the package's ``input.half`` allows
    it; ``True`` asks for it (still only where the package allows it) and needs CUDA.
    ``runner``: ``auto``, ``compiled`` or ``torchscript`` (:mod:`sdk.runners`); None reads
    ``STYLEKIT_RUNNER`` (default ``auto``: compiled kernels when this machine has them cached).
    Images over ``pixel_budget`` pixels run in ``tile``-sized tiles that overlap by
    ``overlap`` pixels (and get that much context around them). With the default tile a
    6000x4000 photo peaked at 1.3-1.6 GB RSS on the CPU with the built-in 26-style network
    (most of the spread is how the allocator fits each tile's activations); the tile count
    barely changes the total work (see ``docs/imaging.md``).
    """

    def __init__(
        self,
        device: str = "auto",
        half: bool | None = None,
        pixel_budget: int = 2048 * 2048,
        tile: int = 768,
        overlap: int = 64,
        limits: ImageLimits | None = None,
        runner: str | None = None,
    ) -> None:
        self.device = resolve_device(device)
        self.runner = runners.default_runner() if runner is None else runners.check_runner(runner)
        if half is not None and not isinstance(half, bool):
            raise BadOptionError(f"half must be True, False or None, not {half!r}.")
        if half and self.device.type != "cuda":
            raise BadOptionError(f"Half precision needs a CUDA device; this engine runs on {self.device}.")
        sizes = (("pixel_budget", pixel_budget, 1), ("tile", tile, 16), ("overlap", overlap, 0))
        for name, value, low in sizes:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise BadOptionError(f"{name} must be an integer >= {low}, not {value!r}.")
        if overlap * 2 >= tile:
            raise BadOptionError(f"overlap ({overlap}) must be less than half the tile size ({tile}).")
        self.half = half
        self.pixel_budget = pixel_budget
        self.tile = tile
        self.overlap = overlap
        self.limits = limits if limits is not None else ImageLimits.from_env()
        # Same-size images go through the model as one tensor batch only where that pays (GPU).
        self.batch_same_size = self.device.type != "cpu"
        # Tiled runs first stylize the whole picture at about this many pixels and take their
        # broad tones from it (see imaging.run_tiled); None or 0 turns that off.
        self.guide_pixels: int | None = 1024 * 1024
        self._models: dict[tuple[str, int, int, str, str, str], StyleModel] = {}
        self._lock = threading.Lock()
        log.info("stylekit engine on %s (half=%s, runner=%s)", self.device, half, self.runner)

    def __repr__(self) -> str:
        return (f"Engine(device={str(self.device)!r}, half={self.half!r}, runner={self.runner!r}, "
                f"pixel_budget={self.pixel_budget})")  # fmt: skip

    # -- public API ------------------------------------------------------------------------

    def stylize(
        self,
        image: ImageInput | DecodedImage,
        style: ResolvedStyle,
        *,
        style_image: ImageInput | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        scale: float = 1.0,
        mask: ImageInput | None = None,
        outside: ResolvedStyle | None = None,
    ) -> Image.Image:
        """Paint ``image`` in ``style``; returns a PIL image of the input's size (or ``max_side``).

        ``style`` (and ``outside``) are resolved above the engine:
        ``StyleRegistry.resolve(name_or_blend)`` for registered styles,
        ``StylePackage.resolve(...)`` within one package (``sdk.stylize`` does this for you).
        ``style_image`` is required by, and only allowed for, arbitrary styles. ``scale``,
        ``mask`` and ``outside`` are :func:`sdk.stylize`'s. Transparency is kept. The options
        are checked here, by making the :class:`~sdk.wire.StyleRequest` that :meth:`run` takes.
        """
        request = StyleRequest(
            strength=strength,
            preserve_color=preserve_color,
            max_side=max_side,
            style_image=style_image,
            scale=scale,
            mask=mask,
            outside=None if outside is None else outside.label,
        )
        return self.run(image, style, request, outside)

    def run(self, image: ImageInput | DecodedImage, style: ResolvedStyle, request: StyleRequest,
            outside: ResolvedStyle | None = None) -> Image.Image:  # fmt: skip
        """Run a resolved style on one image with a checked request (its ``style`` and
        ``outside`` fields are the caller's: the engine runs ``style``, and ``outside`` where
        ``request.mask`` is black, both resolved above it)."""
        return self._run_items(self._plan(style, request, outside), [self._decode(image)], batch=False)[0]

    def run_batch(
        self,
        items: Sequence[ImageInput | DecodedImage],
        style: ResolvedStyle,
        request: StyleRequest,
        outside: ResolvedStyle | None = None,
    ) -> list[Image.Image]:
        """:meth:`run` for several images with one style and request; results in input order.

        On a GPU, images of the same size run as one tensor batch (up to ``pixel_budget``
        pixels per batch); on the CPU, where batching does not pay, they run one by one. The
        request's mask is fitted to each image.
        """
        plan = self._plan(style, request, outside)
        decoded = [self._decode(item) for item in items]
        return self._run_items(plan, decoded, batch=self.batch_same_size)

    def dtype_for(self, package: StylePackage) -> torch.dtype:
        """The dtype this engine runs ``package`` in: float16 on CUDA where allowed, else float32."""
        use_half = self.device.type == "cuda" and self.half is not False and package.manifest.input.half
        return torch.float16 if use_half else torch.float32

    def load(self, package: StylePackage) -> StyleModel:
        """The package's generator on this engine's device and dtype (loaded once, then cached)."""
        manifest = package.manifest
        dtype = self.dtype_for(package)
        use_half = dtype == torch.float16
        path = package.model_path.resolve()
        try:
            st = path.stat()
        except OSError:
            raise StylePackageError(f"Style {manifest.name!r}: model file {path} is missing.") from None
        # mtime and size in the key: a package rewritten in place (retrained) is loaded afresh.
        key = (str(path), st.st_mtime_ns, st.st_size, str(self.device), str(dtype), self.runner)
        with self._lock:
            model = self._models.get(key)
            if model is None:
                module = package.load_module(map_location=self.device)
                if use_half:
                    module = module.half()
                if self.runner != "torchscript":
                    # None: no valid compiled kernels (and none built): TorchScript runs it.
                    build = self.runner == "compiled"
                    compiled = runners.load_compiled(package, self.device, dtype, build=build,
                                                     reference=module)  # fmt: skip
                    module = compiled if compiled is not None else module
                model = _MODEL_CLASSES[manifest.kind](module, package, self.device, dtype)
                self._models[key] = model
                log.info("loaded style %s on %s (%s, %s)", manifest.name, self.device, dtype, model.runner)
            return model

    # -- internals -------------------------------------------------------------------------

    def _decode(self, image: ImageInput | DecodedImage) -> DecodedImage:
        return image if isinstance(image, DecodedImage) else imaging.decode(image, self.limits)

    def _plan(self, style: ResolvedStyle, request: StyleRequest, outside: ResolvedStyle | None) -> _Plan:
        # The request was checked when it was made; what is left depends on the resolved kinds.
        styles = [style] if outside is None else [style, outside]
        for resolved in styles:
            if not isinstance(resolved, ResolvedStyle):
                raise BadOptionError(
                    f"The engine runs a resolved style, not {type(resolved).__name__}: use "
                    "StyleRegistry.resolve(...) or StylePackage.resolve(...), or sdk.stylize()."
                )
        if (request.outside is None) != (outside is None):
            raise BadOptionError(
                "request.outside names the style where the mask is black: resolve it and pass it as "
                "outside=, and only then." if outside is None else
                "outside= is a second style for where the mask is black; the request must name it too."
            )  # fmt: skip
        # (A request that names outside has a mask: StyleRequest refuses it otherwise.)
        kinds = {resolved.kind for resolved in styles}
        if "arbitrary" in kinds and request.style_image is None:
            label = next(r.label for r in styles if r.kind == "arbitrary")
            raise BadOptionError(f"Style {label!r} is arbitrary: it needs a style image.")
        if "arbitrary" not in kinds and request.style_image is not None:
            raise BadOptionError(
                f"Style {style.label!r} is {style.kind}; only an arbitrary style takes a style image."
            )
        mask = None if request.mask is None else imaging.read_mask(request.mask, self.limits)
        painting = None if request.style_image is None else self._decode(request.style_image)
        return _Plan(
            job=self._prepare(style, request, painting),
            outside=None if outside is None else self._prepare(outside, request, painting),
            mask=mask,
        )

    def _prepare(
        self, resolved: ResolvedStyle, request: StyleRequest, style_decoded: DecodedImage | None
    ) -> _Job:
        model = self.load(resolved.package)
        with torch.inference_mode():
            if isinstance(model, ArbitraryModel):
                assert style_decoded is not None  # checked above
                fn = model.bind(model.style_vector(style_decoded))
            elif isinstance(model, MultistyleModel):
                assert resolved.weights is not None  # set for every multistyle resolution
                fn = model.bind(resolved.weights)
            elif isinstance(model, FeedforwardModel):
                fn = model.bind()
            else:  # pragma: no cover - _MODEL_CLASSES covers every kind
                raise StylePackageError(f"Style {resolved.label!r} has unsupported kind {resolved.kind!r}.")
        log.debug("stylizing with %s on %s", resolved.label, self.device)
        return _Job(model, fn, request.strength, request.preserve_color, request.max_side, request.scale)

    def _run_items(self, plan: _Plan, items: list[DecodedImage], *, batch: bool) -> list[Image.Image]:
        items = [imaging.resize_max_side(d, plan.job.max_side) for d in items]
        masks = None if plan.mask is None else [imaging.fit_mask(plan.mask, d.size) for d in items]
        styled = self._styled(plan.job, items, batch=batch)
        # Without a second style, the photo itself is what the mask keeps where it is black.
        others = (
            [d.rgb for d in items] if plan.outside is None else self._styled(plan.outside, items, batch=batch)
        )
        results = []
        for i, d in enumerate(items):
            out = styled[i] if masks is None else imaging.apply_mask(styled[i], others[i], masks[i])
            results.append(imaging.finish(out, d))
        return results

    def _styled(self, job: _Job, items: list[DecodedImage], *, batch: bool) -> list[np.ndarray]:
        """Each image painted in the job's style at its size, colour and strength applied."""
        # scale != 1: the network works on the photo resized by 1/scale (imaging.work_size).
        work = [d.rgb for d in items]
        if job.scale != 1.0:
            sizes = [imaging.work_size(d.size, job.scale) for d in items]
            for size in sizes:
                imaging.check_work_size(size, job.scale, self.limits)
            work = [imaging.resize_rgb(d.rgb, size) for d, size in zip(items, sizes, strict=True)]
        outputs: list[np.ndarray | None] = [None] * len(items)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(work):
            groups.setdefault((rgb.shape[1], rgb.shape[0]), []).append(i)
        with torch.inference_mode():
            for (w, h), indices in groups.items():
                per_batch = max(1, self.pixel_budget // (w * h)) if batch else 1
                for start in range(0, len(indices), per_batch):
                    chunk = indices[start : start + per_batch]
                    for i, rgb in zip(chunk, self._run_rgb(job, [work[i] for i in chunk]), strict=True):
                        outputs[i] = rgb
        results = []
        for d, small, out in zip(items, work, outputs, strict=True):
            assert out is not None  # every index belongs to one group
            if job.scale > 1.0:
                out = imaging.guided_upsample(out, small, d.rgb)
            elif job.scale < 1.0:
                out = imaging.resize_rgb(out, d.size)  # painted larger: shrinking keeps it sharp
            results.append(self._colour(job, d, out))
        return results

    def _run_rgb(self, job: _Job, rgbs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model on same-size images (one batch); tiles when an image is over budget."""
        h, w = rgbs[0].shape[:2]
        multiple = job.model.multiple
        if len(rgbs) == 1 and imaging.needs_tiling(w, h, self.pixel_budget):
            guide = self._guide(job, rgbs[0])
            # A uint8 view in, uint8 rows out as they are finished: no full-size float tensor.
            view = torch.from_numpy(_writable(rgbs[0])).permute(2, 0, 1).unsqueeze(0)
            return [
                imaging.run_tiled_uint8(
                    job.fn,
                    view,
                    tile=self.tile,
                    overlap=self.overlap,
                    multiple=multiple,
                    guide=guide,
                    min_side=imaging.MIN_MODEL_SIDE,
                )
            ]
        tensors = [imaging.to_tensor(rgb) for rgb in rgbs]
        x = torch.cat(tensors) if len(tensors) > 1 else tensors[0]
        padded, pads = imaging.pad_to_multiple(x, multiple, min_side=imaging.MIN_MODEL_SIDE)
        y = imaging.unpad(job.fn(padded), pads)
        if y.shape[-2:] != x.shape[-2:] or y.shape[0] != x.shape[0]:
            raise StylePackageError(
                f"Style {job.model.name!r}: the generator returned {tuple(y.shape)} for {tuple(padded.shape)}"
            )
        return [imaging.to_uint8(y[i : i + 1]) for i in range(y.shape[0])]

    def _guide(self, job: _Job, rgb: np.ndarray) -> torch.Tensor | None:
        """The whole picture stylized at a reduced size, for the tiles' broad tones."""
        if not self.guide_pixels:
            return None
        h, w = rgb.shape[:2]
        scale = math.sqrt(self.guide_pixels / (w * h))
        if scale >= 1.0:
            return None
        whole = DecodedImage(rgb, None, "RGB", None, (w, h))
        small = imaging.resize_max_side(whole, max(1, round(max(w, h) * scale)))
        x, pads = imaging.pad_to_multiple(
            imaging.to_tensor(small.rgb), job.model.multiple, min_side=imaging.MIN_MODEL_SIDE
        )
        return imaging.unpad(job.fn(x), pads)

    @staticmethod
    def _colour(job: _Job, decoded: DecodedImage, out: np.ndarray) -> np.ndarray:
        if job.preserve_color:
            out = imaging.preserve_color(decoded.rgb, out)
        if job.strength < 1.0:
            out = imaging.blend(decoded.rgb, out, job.strength)
        return out


def _writable(arr: np.ndarray) -> np.ndarray:
    # torch.from_numpy warns on read-only arrays (e.g. views of a caller's buffer); copy those.
    return arr if arr.flags.writeable and arr.flags.c_contiguous else np.array(arr, order="C")


__all__ = [
    "ArbitraryModel",
    "Engine",
    "FeedforwardModel",
    "MultistyleModel",
    "StyleModel",
]
