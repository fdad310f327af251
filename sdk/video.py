"""Video: stylize clips and streams of frames, with temporal consistency (``pip install 'stylekit[video]'``).

Three layers, each built on the one below:

- :class:`FrameStylizer`: one frame in, one stylized frame out, remembering the last one so
  the next can be made consistent with it (what a live camera uses; ``.style`` can change
  between frames);
- :func:`stylize_frames`: a stream of frames (numpy arrays or PIL images) -> a stream of the
  same type;
- :func:`stylize_video`: a file -> a file, streamed (decoded, stylized and encoded frame by
  frame, so memory does not grow with the clip's length); frame count, timestamps (variable
  frame rate too), rotation metadata and audio (remuxed, not re-encoded) are kept.

Every style goes through the one contract: options are checked by making a
:class:`~sdk.wire.StyleRequest`, the style is resolved by the registry, and
:meth:`sdk.engine.Engine.run_batch` runs it, so built-ins, blends, arbitrary styles with a
painting, trained and plugin packages all work here as in :func:`sdk.stylize`.

**Temporal consistency** (``temporal`` in [0, 1], 0 = frame by frame): dense optical flow
(OpenCV's DIS) on the *input* frames carries the previous *stylized* frame to the current one
(``cv2.remap``); where that flow is reliable (forward-backward consistent, and the warped
previous input matches the current input) the output is
``m * temporal * warped_previous + (1 - m * temporal) * stylized_now``. Strokes then follow
the scene instead of being painted afresh every frame; new content (occlusions, the edge a
pan reveals, a scene cut) fails the checks and comes straight from the network.

**Stroke size and regions** (``scale``, ``mask``, ``outside``: :func:`sdk.stylize`'s) apply to
every frame. A mask is one image for every frame (read once) or one per frame (a list, or a
folder in natural name order); where a frame's mask is black, the output frame is the input's
pixels exactly, the temporal blend included (it carries strokes only within a region).

PyAV and OpenCV are imported when first needed, so ``import sdk`` does not need the extra.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast, overload

import numpy as np

from sdk import wire
from sdk.errors import BadOptionError, InvalidMaskError, InvalidVideoError, StylekitError
from sdk.wire import StyleChoice, StyleRequest

if TYPE_CHECKING:
    from PIL import Image

    from sdk.api import StyleArg
    from sdk.engine import Engine
    from sdk.imaging import ImageInput, ImageLimits
    from sdk.package import ResolvedStyle

    #: ``mask=`` of the video functions: one image for every frame, or one per frame (a list or
    #: tuple of images, or a folder of image files, in natural name order).
    MaskArg = ImageInput | Sequence[ImageInput] | None

log = logging.getLogger(__name__)

#: Default strength of the temporal blend: measured on a noisy pan (benchmarks/video.py,
#: docs/video.md) as the point where flicker is well under half while the look stays.
DEFAULT_TEMPORAL = 0.8

#: Output containers by file suffix: (FFmpeg muxer, video encoder). H.264 plays everywhere;
#: WebM only takes VP8/VP9/AV1.
CONTAINERS: dict[str, tuple[str, str]] = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
}

# Optical flow runs on frames brought to at most this many pixels on the longest side: DIS at
# 512 px costs a few ms, and the flow of a stylized clip need not be finer than its strokes.
_FLOW_SIDE = 384
# Forward-backward check (Sundaram et al. 2010, as used by Ruder et al. 2016): a pixel is
# occluded when |f + b|^2 > _FB_REL * (|f|^2 + |b|^2) + _FB_ABS (in flow pixels squared).
_FB_REL, _FB_ABS = 0.01, 0.5
# Photometric check: the warped previous input must match the current one; the mask falls from
# 1 to 0 between these mean absolute differences (0..255 scale), so lighting changes and
# mis-tracked pixels let the new stylization through.
_PHOTO_LOW, _PHOTO_HIGH = 12.0, 30.0
# The detail band _keep_detail restores (what a blur of this sigma removes), and the side of the
# square over which its energy is matched, in output pixels.
_DETAIL_SIGMA, _ENERGY_SIDE = 1.0, 17
_CHANNEL_MEAN = np.full((1, 3), 1 / 3, dtype=np.float32)
# Frames run through the engine together (one style preparation per batch, one tensor batch on
# a GPU); memory is a few frames whatever the clip's length.
_BATCH = 4

def check_temporal(value: object) -> float:
    """``temporal``: a number from 0 (frame by frame) to 1 (follow the previous frame wherever reliable)."""
    return wire.check_number("temporal", value, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------
# Temporal consistency


class TemporalBlender:
    """Makes each stylized frame consistent with the previous output, by optical flow on the inputs.

    ``blend(input_rgb, stylized_rgb)`` returns the frame to show; ``reset()`` forgets the past
    (a cut, a new clip). Frames are HxWx3 uint8; a change of size resets by itself.

    With a mask (``region``: the HxW uint8 mask the engine applied to this frame, at its
    size), strokes are carried only where a pixel was in the same region in the previous
    frame (a mask that moves lets the new region start fresh), and, unless ``photo_outside``
    is False (an ``outside`` style painted the black part), the output is ``stylized``
    exactly wherever the mask is 0: the photo's own pixels stay the photo's.
    """

    def __init__(self, temporal: float = DEFAULT_TEMPORAL) -> None:
        self.temporal = check_temporal(temporal)
        self._dis: Any = None
        self.reset()

    def reset(self) -> None:
        self._prev_in: np.ndarray | None = None  # previous input, grey float32 HxW
        self._prev_small: np.ndarray | None = None  # previous input, grey, flow resolution
        self._prev_out: np.ndarray | None = None  # previous output, float32 HxWx3
        self._prev_region: np.ndarray | None = None  # previous mask, float32 HxW in 0..1 (None: all style)
        #: Share of pixels taken from the warped previous output in the last frame (0..1).
        self.last_reliable: float = 0.0

    def blend(self, content: np.ndarray, stylized: np.ndarray, region: np.ndarray | None = None, *,
              photo_outside: bool = True) -> np.ndarray:  # fmt: skip
        import cv2

        h, w = content.shape[:2]
        grey, small = _flow_inputs(content)
        cur_in = grey.astype(np.float32)
        cur_out = stylized.astype(np.float32)
        share = None if region is None else _share(region, (h, w))
        prev_out, prev_in, prev_small = self._prev_out, self._prev_in, self._prev_small
        if (
            self.temporal <= 0.0
            or prev_out is None
            or prev_in is None
            or prev_small is None
            or prev_out.shape != cur_out.shape
        ):
            out = cur_out
            self.last_reliable = 0.0
        else:
            mask, map_x, map_y = self._reliable(small, prev_small, (w, h))
            warped_in = cv2.remap(prev_in, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            diff = cv2.absdiff(warped_in, cur_in)  # on luminance: a third of the work of RGB
            mask *= np.clip((_PHOTO_HIGH - diff) / (_PHOTO_HIGH - _PHOTO_LOW), 0.0, 1.0)
            if share is not None or self._prev_region is not None:
                # Only what was in the same region before is carried: the style is not dragged
                # into what the mask newly takes (nor the photo, or the outside style, into it).
                now = share if share is not None else np.ones((h, w), np.float32)
                before = self._prev_region if self._prev_region is not None else np.ones((h, w), np.float32)
                moved = cv2.remap(before, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                mask *= 1.0 - np.abs(now - moved)
            # A soft edge around occlusions: no seam where new content meets carried strokes.
            mask = cv2.GaussianBlur(mask, (0, 0), 1.5)
            # Cubic resampling: the carried frame is resampled again every frame, and linear
            # interpolation's blur would pile up frame after frame.
            warped = cv2.remap(prev_out, map_x, map_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
            weight = (mask * self.temporal)[..., None]
            out = _keep_detail(weight * warped + (1.0 - weight) * cur_out, cur_out)
            if share is not None and photo_outside:
                # Where the mask is 0 the engine gave the photo's pixels: they stay exactly those
                # (cur + 0 * anything = cur), and grey areas take the carried style in proportion.
                out = cur_out + share[..., None] * (out - cur_out)
            self.last_reliable = float(mask.mean())
        np.clip(out, 0.0, 255.0, out=out)
        self._prev_in, self._prev_small, self._prev_out = cur_in, small, out
        self._prev_region = share
        return np.rint(out).astype(np.uint8)

    def _reliable(self, small: np.ndarray, prev_small: np.ndarray,
                  size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
        """The reliability mask (float32 HxW in 0..1) and the maps that pull the previous frame here."""
        import cv2

        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)  # type: ignore[attr-defined]
        back = self._dis.calc(small, prev_small, None)  # current pixel -> where it was before
        fwd = self._dis.calc(prev_small, small, None)  # previous pixel -> where it went
        sh, sw = small.shape[:2]
        gx, gy = _grid(sw, sh)
        bx, by = cv2.split(back)
        # The forward flow at the place each current pixel came from should bring it back.
        fwd_there = cv2.remap(fwd, gx + bx, gy + by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        fx_, fy_ = cv2.split(fwd_there)
        err = cv2.magnitude(bx + fx_, by + fy_) ** 2
        bound = _FB_REL * (cv2.magnitude(bx, by) ** 2 + cv2.magnitude(fx_, fy_) ** 2) + _FB_ABS
        mask = (err <= bound).astype(np.float32)
        w, h = size
        if (sw, sh) != (w, h):
            bx = cv2.resize(bx, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(w / sw)
            by = cv2.resize(by, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(h / sh)
            mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        fx, fy = _grid(w, h)
        map_x, map_y = fx + bx, fy + by
        # What came from outside the previous frame (the edge a pan reveals) is new content.
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        mask *= inside
        return mask, map_x, map_y


def _share(region: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A mask (HxW uint8, the frame's size) as the style's share of each pixel, float32 in 0..1."""
    if region.shape != shape or region.dtype != np.uint8:
        raise BadOptionError(f"A frame's region must be an HxW uint8 mask of {shape}, not "
                             f"{region.dtype} {region.shape}.")  # fmt: skip
    return region.astype(np.float32) / np.float32(255)


def _flow_inputs(content: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A frame's luminance, full size and at the flow's resolution (at most ``_FLOW_SIDE``)."""
    import cv2

    h, w = content.shape[:2]
    scale = min(1.0, _FLOW_SIDE / max(h, w))
    small_size = (max(8, round(w * scale)), max(8, round(h * scale)))
    grey = cv2.cvtColor(content, cv2.COLOR_RGB2GRAY)
    small = grey if small_size == (w, h) else cv2.resize(grey, small_size, interpolation=cv2.INTER_AREA)
    return grey, small


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> float:
    """How much a stylized clip flickers along its motion, on 0..255.

    For each pair of consecutive frames, the motion is measured on the *inputs* (the flow and the
    reliability checks of :class:`TemporalBlender`), the previous *output* is carried along it,
    and the mean absolute difference to the current output is taken over the pixels whose
    motion is reliable. ``warping_error(frames, frames)`` is the inputs' own figure: the floor
    that noise and resampling leave. Frames are HxWx3 uint8, ``outputs[i]`` the size of
    ``inputs[i]``; fewer than two frames score 0.
    """
    import cv2

    blender = TemporalBlender(1.0)
    errors: list[float] = []
    previous: tuple[np.ndarray, np.ndarray] | None = None
    for content, output in zip(inputs, outputs, strict=True):
        _, small = _flow_inputs(np.ascontiguousarray(content[..., :3]))
        out = output[..., :3].astype(np.float32)
        if previous is not None and previous[1].shape == out.shape:
            h, w = out.shape[:2]
            mask, map_x, map_y = blender._reliable(small, previous[0], (w, h))
            warped = cv2.remap(previous[1], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            weight = float(mask.sum())
            if weight > 0:
                errors.append(float((np.abs(out - warped).mean(axis=2) * mask).sum() / weight))
        previous = (small, out)
    return float(np.mean(errors)) if errors else 0.0


@functools.lru_cache(maxsize=4)
def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (x, y), float32 HxW each: the identity map that flows are added to."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    gx.flags.writeable = gy.flags.writeable = False  # shared between calls
    return gx, gy


def _keep_detail(blended: np.ndarray, stylized: np.ndarray) -> np.ndarray:
    """``blended`` with its fine detail brought back to the energy of ``stylized``, locally.

    Averaging the carried frame with a new one whose strokes differ cancels part of their fine
    detail (measured: half the Laplacian variance at temporal 0.8), so the output would soften.
    The detail band (what a small blur removes) is scaled, where it is weaker than the fresh
    stylization's, to that energy (at most 2.5x). The target is always the current frame's, so
    the scaling cannot build up from frame to frame.
    """
    import cv2

    low = cv2.GaussianBlur(blended, (0, 0), _DETAIL_SIGMA)
    detail = blended - low
    ref_detail = stylized - cv2.GaussianBlur(stylized, (0, 0), _DETAIL_SIGMA)
    # A box filter: the neighbourhood's mean energy, in constant time per pixel.
    box = (_ENERGY_SIDE, _ENERGY_SIDE)
    have = cv2.blur(cv2.transform(detail * detail, _CHANNEL_MEAN), box)
    want = cv2.blur(cv2.transform(ref_detail * ref_detail, _CHANNEL_MEAN), box)
    gain = np.sqrt((want + 1.0) / (have + 1.0))
    np.clip(gain, 1.0, 2.5, out=gain)
    return np.asarray(low + detail * gain[..., None], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Masks

#: The files a mask folder's masks are read from; other files and hidden ones are ignored.
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def _natural_key(name: str) -> list[tuple[str, int]]:
    """Sort key of a file name with its digit runs compared as numbers: frame2 before frame10."""
    parts = re.split(r"([0-9]+)", name.lower())
    return [(parts[i], int(parts[i + 1]) if i + 1 < len(parts) else -1) for i in range(0, len(parts), 2)]


def mask_files(folder: str | os.PathLike[str]) -> list[Path]:
    """A mask folder's image files (:data:`MASK_SUFFIXES`, not hidden) in natural name order:
    digit runs compare as numbers, so ``m2.png`` comes before ``m10.png`` (ties: the name)."""
    path = Path(folder).expanduser()
    try:
        entries = list(path.iterdir())
    except OSError as exc:
        raise InvalidMaskError(f"The mask folder '{path}' cannot be read: {exc.strerror or exc}.") from None
    files = [p for p in entries
             if p.suffix.lower() in MASK_SUFFIXES and not p.name.startswith(".") and p.is_file()]  # fmt: skip
    if not files:
        raise InvalidMaskError(
            f"The mask folder '{path}' holds no mask images ({', '.join(MASK_SUFFIXES)}): "
            "give one per frame."
        )
    return sorted(files, key=lambda p: (_natural_key(p.name), p.name))


class _Masks:
    """Where each frame's mask comes from: nowhere, one mask for every frame (read once), or one
    per frame (read as its frame comes, so memory stays flat), in order."""

    def __init__(self, mask: MaskArg) -> None:
        self.given = mask
        self.fixed: np.ndarray | None = None
        self.items: Sequence[Any] | None = None
        self.where = "the list of masks"
        self.taken = 0
        self.frames_expected: int | None = None  # for the message when they run out
        self._first: np.ndarray | None = None
        self._limits: ImageLimits | None = None
        if isinstance(mask, (str, os.PathLike)) and Path(mask).expanduser().is_dir():
            self.items = mask_files(mask)
            self.where = f"the mask folder '{Path(mask).expanduser()}'"
        elif isinstance(mask, (list, tuple)):
            if not mask:
                raise InvalidMaskError("The list of masks is empty: give one per frame (or one for all).")
            self.items = mask

    @property
    def kind(self) -> str | None:
        """``"fixed"``, ``"per-frame"`` or None (no mask)."""
        if self.given is None:
            return None
        return "fixed" if self.items is None else "per-frame"

    @property
    def count(self) -> int | None:
        """How many per-frame masks there are (None: not per frame)."""
        return None if self.items is None else len(self.items)

    def open(self, limits: ImageLimits) -> np.ndarray | None:
        """Read the fixed mask, or the first per-frame one (so a bad one fails before any frame):
        the mask the request is checked with."""
        from sdk import imaging

        self._limits = limits
        if self.given is None:
            return None
        if self.items is None:
            self.fixed = imaging.read_mask(cast("ImageInput", self.given), limits)
            return self.fixed
        self._first = self._read(0)
        return self._first

    def too_few(self, frames: int, *, at_least: bool = False) -> InvalidMaskError:
        count = self.count
        more = " or more" if at_least else ""
        about = f" (of about {self.frames_expected})" if at_least and self.frames_expected else ""
        return InvalidMaskError(
            f"{self.where[0].upper()}{self.where[1:]} holds {count} masks for {frames}{more} frames{about}: "
            "give one mask per frame."
        )

    def take(self, n: int) -> list[np.ndarray]:
        """The next ``n`` frames' masks, read now."""
        assert self.items is not None
        if self.taken + n > len(self.items):
            raise self.too_few(self.taken + n, at_least=True)
        masks = [self._read(i) for i in range(self.taken, self.taken + n)]
        self.taken += n
        return masks

    def _read(self, index: int) -> np.ndarray:
        from sdk import imaging

        assert self.items is not None
        if index == 0 and self._first is not None:
            first, self._first = self._first, None  # read once, for the check; used once
            return first
        item = self.items[index]
        try:
            return imaging.read_mask(item, self._limits)
        except InvalidMaskError as exc:
            if isinstance(item, (str, os.PathLike)):
                raise  # the message names the file
            raise InvalidMaskError(f"Mask {index + 1} of {len(self.items)}: {exc.message}") from None


# ---------------------------------------------------------------------------------------------
# Frames


class FrameStylizer:
    """Stylizes a stream of frames one at a time, each consistent with the one before.

    ``process(frame)`` takes an HxWx3 uint8 RGB array and returns one of the same size (or
    ``max_side``). Setting ``style`` (a name, blend, package path, spec or resolved style)
    checks and loads it at once and takes effect on the next frame; ``reset()`` forgets the
    previous frame (call it at a cut or when the source changes). Thread-safe: a camera loop
    may process while another thread switches the style.

    ``scale``, ``mask`` and ``outside`` are :func:`sdk.stylize`'s, for every frame. ``mask`` is
    one image (read once, fitted to each frame) or one mask per frame: a list or tuple of
    images, or a folder of image files in natural name order (:func:`mask_files`), taken one
    per frame processed, in order; running out is an :class:`~sdk.errors.InvalidMaskError`.
    ``process(frame, mask=...)`` gives one frame its own mask instead. Where a mask is black
    the output frame is the input frame's pixels exactly (the temporal blend included), unless
    ``outside`` paints it in a second style.
    """

    def __init__(
        self,
        style: StyleArg,
        *,
        style_image: ImageInput | None = None,
        temporal: float = DEFAULT_TEMPORAL,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        scale: float = 1.0,
        mask: MaskArg | _Masks = None,
        outside: StyleArg | None = None,
        device: str = "auto",
        runner: str | None = None,
    ) -> None:
        from sdk import api, extras, imaging

        extras.require("video", "sdk.video")  # one line naming the extra, before any work
        # The Python edge: options are checked once, by making the request (as sdk.stylize does).
        request = StyleRequest(strength=strength, preserve_color=preserve_color, max_side=max_side,
                               style_image=style_image, scale=scale)  # fmt: skip
        self._blender = TemporalBlender(temporal)
        self._masks = mask if isinstance(mask, _Masks) else _Masks(mask)
        self._engine: Engine = api.engine(device, runner)
        painting = None
        if style_image is not None:
            # Decoded once, not once per frame (an array is only checked when the engine meets it).
            painting = imaging.decode(style_image).rgb
        # The mask too is read once (a fixed one), or the first of one per frame, so a bad mask
        # or an outside= without one fails here.
        first_mask = self._masks.open(self._engine.limits)
        self._request = replace(request, style_image=painting, mask=first_mask,
                                outside=_choice(outside) if outside is not None else None)  # fmt: skip
        self._lock = threading.Lock()
        self._outside: ResolvedStyle | None = None if outside is None else self._resolve(outside)
        self._fitted: dict[tuple[int, int], np.ndarray] = {}  # the fixed mask at each frame size
        self._resolved: ResolvedStyle = self._check(style)

    @property
    def temporal(self) -> float:
        return self._blender.temporal

    @property
    def request(self) -> StyleRequest:
        """The checked options every frame runs with (``mask``: the fixed mask, or the first frame's)."""
        return self._request

    @property
    def limits(self) -> ImageLimits:
        """The image limits frames are held to (the engine's: ``STYLEKIT_MAX_PIXELS`` etc.)."""
        return self._engine.limits

    @property
    def outside(self) -> ResolvedStyle | None:
        """The style painted where the mask is black (None: the frame's own pixels stay)."""
        return self._outside

    @property
    def masks(self) -> str | None:
        """``"fixed"`` (one mask for every frame), ``"per-frame"`` or None."""
        return self._masks.kind

    @property
    def style(self) -> ResolvedStyle:
        """The style the next frame is painted in (as resolved: ``.label`` names it)."""
        return self._resolved

    @style.setter
    def style(self, style: StyleArg) -> None:
        resolved = self._check(style)
        with self._lock:
            self._resolved = resolved
            # The carried frame is in the old style: start the new one afresh.
            self._blender.reset()

    @staticmethod
    def _resolve(style: StyleArg) -> ResolvedStyle:
        from sdk.info import StyleInfo
        from sdk.registry import default_registry

        return default_registry().resolve(style.name if isinstance(style, StyleInfo) else style)

    def _check(self, style: StyleArg) -> ResolvedStyle:
        resolved = self._resolve(style)
        # An empty batch: the engine checks the style against the request and loads the model,
        # so a bad choice fails here and the first frame in it does not wait for the load.
        self._engine.run_batch([], resolved, self._request, self._outside)
        return resolved

    def reset(self) -> None:
        """Forget the previous frame: the next one is stylized on its own."""
        with self._lock:
            self._blender.reset()

    def process(self, frame: np.ndarray, mask: ImageInput | None = None) -> np.ndarray:
        """One frame (HxWx3 uint8 RGB) -> its stylized frame, consistent with the previous one.

        ``mask``: this frame's own mask, instead of the stylizer's (whose per-frame masks are
        then not advanced)."""
        return self.process_many([frame], None if mask is None else [mask])[0]

    def process_many(self, frames: Sequence[np.ndarray],
                     masks: Sequence[ImageInput] | None = None) -> list[np.ndarray]:  # fmt: skip
        """Several consecutive frames at once (one engine call; a tensor batch on a GPU);
        ``masks``, if given, one per frame, instead of the stylizer's."""
        from sdk import imaging

        if not frames:
            return []
        if masks is not None and len(masks) != len(frames):
            raise InvalidMaskError(f"{len(frames)} frames came with {len(masks)} masks: give one per frame.")
        with self._lock:
            resolved, outside = self._resolved, self._outside
            own: list[np.ndarray] | None
            if masks is not None:
                own = [imaging.read_mask(m, self._engine.limits) for m in masks]
            elif self._masks.items is not None:
                own = self._masks.take(len(frames))
            else:
                own = None
            if own is None:
                images = self._engine.run_batch(list(frames), resolved, self._request, outside)
            else:
                # A mask per frame: one request each (the engine fits each mask to its frame).
                images = [self._engine.run(frame, resolved, replace(self._request, mask=m), outside)
                          for frame, m in zip(frames, own, strict=True)]  # fmt: skip
            outputs = []
            for i, (frame, image) in enumerate(zip(frames, images, strict=True)):
                stylized = np.asarray(image.convert("RGB"))
                content = frame if frame.shape == stylized.shape else _resized(frame, stylized.shape)
                region = self._region(None if own is None else own[i], stylized.shape)
                blended = self._blender.blend(np.ascontiguousarray(content[..., :3]), stylized, region,
                                              photo_outside=outside is None)  # fmt: skip
                outputs.append(blended)
            return outputs

    def _region(self, mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
        """The mask the engine applied to this frame: fitted to its size by the same rule."""
        from sdk import imaging

        size = (shape[1], shape[0])
        if mask is not None:
            return imaging.fit_mask(mask, size)
        if self._masks.fixed is None:
            return None
        fitted = self._fitted.get(size)
        if fitted is None:
            fitted = self._fitted[size] = imaging.fit_mask(self._masks.fixed, size)
            if len(self._fitted) > 8:  # frames of ever new sizes (a camera switching modes)
                self._fitted = {size: fitted}
        return fitted


def _choice(style: StyleArg) -> StyleChoice:
    """What the request names for ``outside``: a name or blend as given, else its label or name."""
    if isinstance(style, (str, dict)):
        return style
    if isinstance(style, os.PathLike):
        return os.fspath(style)
    return str(getattr(style, "label", None) or getattr(style, "name", None) or style)


def _resized(frame: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``frame`` at the size the engine gave its result (``max_side``), for the flow and the mask."""
    import cv2

    rgb = np.ascontiguousarray(frame[..., :3]) if frame.ndim == 3 else np.stack([frame] * 3, axis=2)
    return np.asarray(cv2.resize(rgb, (shape[1], shape[0]), interpolation=cv2.INTER_AREA))


@overload
def stylize_frames(frames: Iterable[np.ndarray], style: StyleArg,
                   **options: Any) -> Iterator[np.ndarray]: ...  # fmt: skip
@overload
def stylize_frames(frames: Iterable[Image.Image], style: StyleArg,
                   **options: Any) -> Iterator[Image.Image]: ...  # fmt: skip
def stylize_frames(frames: Iterable[Any], style: StyleArg, **options: Any) -> Iterator[Any]:
    """Stylize a stream of frames; each comes out as it went in (HxWx3 uint8 array or PIL image).

    ``options`` are :class:`FrameStylizer`'s (``style_image``, ``temporal``, ``strength``,
    ``preserve_color``, ``max_side``, ``scale``, ``mask``, ``outside``, ``device``,
    ``runner``); they and the style are checked before the first frame is read. Frames are
    pulled one at a time, so an endless camera stream works. With one mask per frame and
    frames whose number is known (a list), fewer masks than frames is refused before any
    work; more are fine (the rest are not used).
    """
    masks = _Masks(options.pop("mask", None))
    if masks.count is not None and isinstance(frames, Sized) and len(frames) > masks.count:
        raise masks.too_few(len(frames))
    stylizer = FrameStylizer(style, mask=masks, **options)
    return _frames(stylizer, frames)


def _frames(stylizer: FrameStylizer, frames: Iterable[Any]) -> Iterator[Any]:
    from PIL import Image

    for frame in frames:
        if isinstance(frame, Image.Image):
            yield Image.fromarray(stylizer.process(np.asarray(frame.convert("RGB"))), "RGB")
        elif isinstance(frame, np.ndarray):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise InvalidVideoError(
                    f"A frame must be an HxWx3 uint8 RGB array, not {frame.dtype} of shape {frame.shape}."
                )
            yield stylizer.process(frame)
        else:
            kind = type(frame).__name__
            raise InvalidVideoError(f"A frame must be a numpy array or a PIL image, not {kind}.")


# ---------------------------------------------------------------------------------------------
# Files


@dataclass(frozen=True)
class VideoProgress:
    """How far :func:`stylize_video` is: frames done, of ``total`` (None if unknown), speed, ETA."""

    done: int
    total: int | None
    frames_per_second: float
    eta_seconds: float | None

    def __str__(self) -> str:
        of = f"/{self.total}" if self.total else ""
        eta = f", ETA {_clock(self.eta_seconds)}" if self.eta_seconds is not None else ""
        return f"{self.done}{of} frames, {self.frames_per_second:.1f} frames/s{eta}"


@dataclass(frozen=True)
class VideoReport:
    """What :func:`stylize_video` wrote."""

    source: str
    output: str
    frames: int
    fps: float  # average frame rate of the output (frames / duration)
    size: tuple[int, int]  # (width, height) of the output frames, as stored (before rotation)
    seconds: float  # the output's duration
    elapsed: float  # wall time the work took
    audio_streams: int  # audio streams copied (remuxed, not re-encoded)
    rotation: float  # display rotation kept from the input, in degrees (counter-clockwise)
    style: str
    temporal: float
    scale: float = 1.0
    mask: str | None = None  # "fixed" (one for every frame), "per-frame" or None
    outside: str | None = None  # the style where the mask is black (None: the video's own pixels)

    @property
    def audio(self) -> bool:
        return self.audio_streams > 0

    @property
    def frames_per_second(self) -> float:
        """Processing speed."""
        return self.frames / self.elapsed if self.elapsed > 0 else 0.0

    def to_dict(self) -> dict[str, object]:
        return {
            "input": self.source, "output": self.output, "frames": self.frames, "fps": round(self.fps, 3),
            "size": list(self.size), "seconds": round(self.seconds, 3), "elapsed": round(self.elapsed, 3),
            "audio_streams": self.audio_streams, "rotation": self.rotation, "style": self.style,
            "temporal": self.temporal, "scale": self.scale, "mask": self.mask, "outside": self.outside,
        }  # fmt: skip


ProgressFn = Callable[[VideoProgress], None]


def stylize_video(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    style: StyleArg,
    *,
    style_image: ImageInput | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_side: int | None = None,
    temporal: float = DEFAULT_TEMPORAL,
    scale: float = 1.0,
    mask: MaskArg = None,
    outside: StyleArg | None = None,
    start: float | None = None,
    duration: float | None = None,
    device: str = "auto",
    runner: str | None = None,
    progress: ProgressFn | None = None,
) -> VideoReport:
    """Stylize the video file ``src`` into ``dst`` (.mp4, .m4v, .mov, .mkv, .webm); report what was written.

    The output keeps every frame and its timestamp (variable frame rates too), the size (or
    ``max_side``, rounded to even sides for H.264), the rotation metadata and the audio
    streams (copied packet for packet). ``start``/``duration`` (seconds) cut a part.
    ``temporal`` (0..1, default 0.8) sets how strongly each frame follows the previous one
    (0: frame by frame). ``progress`` is called after each frame with a :class:`VideoProgress`.
    ``scale``, ``mask`` and ``outside`` are as for :func:`sdk.stylize`; ``mask`` is one image
    for every frame, or one per frame (a list of images, or a folder of image files in
    natural name order: :func:`mask_files`), paired with the frames stylized in order (with
    ``start``, the first mask is the first frame's at ``start``). Fewer masks than frames is
    an :class:`~sdk.errors.InvalidMaskError`, raised before the first frame is decoded where
    the container states the frame count; more are fine (the rest are not used). The rest is
    as for :func:`sdk.stylize`.

    The file is written next to ``dst`` under a temporary name and renamed when complete:
    on any error ``dst`` is left as it was (the error says nothing was written). A bad input raises
    :class:`InvalidVideoError` (:class:`ImageTooLargeError` for frames over the image limits).
    """
    from sdk import extras

    extras.require("video", "sdk.stylize_video")
    started = time.perf_counter()
    source, target = Path(src).expanduser(), Path(dst).expanduser()
    # Everything that needs no frame is checked first: options, style, output name.
    temporal = check_temporal(temporal)
    start_s = 0.0 if start is None else wire.check_number("start", start, 0.0, 1e7)
    duration_s = None if duration is None else wire.check_number("duration", duration, 1e-3, 1e7)
    muxer, encoder = _container_for(target)
    if not source.is_file():
        raise InvalidVideoError(f"Video '{source}': no such file.")
    if target.exists() and target.resolve() == source.resolve():
        raise BadOptionError(f"Refusing to overwrite the input {source} with its result.")
    if target.exists() and target.is_dir():
        raise BadOptionError(f"The output {target} is a folder; give a file name such as out.mp4.")
    masks = _Masks(mask)
    stylizer = FrameStylizer(style, style_image=style_image, temporal=temporal, strength=strength,
                             preserve_color=preserve_color, max_side=max_side, scale=scale, mask=masks,
                             outside=outside, device=device, runner=runner)  # fmt: skip
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        with _Transcoder(source, tmp, muxer, encoder, stylizer, start_s, duration_s, progress, masks) as job:
            job.run()
        tmp.replace(target)
    except StylekitError as exc:
        tmp.unlink(missing_ok=True)
        _say_nothing_written(exc, target)
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return VideoReport(
        source=str(source), output=str(target), frames=job.frames,
        fps=job.frames / job.seconds if job.seconds else 0.0,
        size=job.size, seconds=job.seconds, elapsed=time.perf_counter() - started,
        audio_streams=job.audio_streams, rotation=job.rotation, style=stylizer.style.label,
        temporal=temporal, scale=stylizer.request.scale, mask=masks.kind,
        outside=None if stylizer.outside is None else stylizer.outside.label,
    )  # fmt: skip


def _say_nothing_written(exc: StylekitError, target: Path) -> None:
    note = f" Nothing was written to {target}."
    if not exc.message.endswith(note):
        exc.message += note
        exc.args = (exc.message, *exc.args[1:])


def _container_for(target: Path) -> tuple[str, str]:
    found = CONTAINERS.get(target.suffix.lower())
    if found is None:
        raise BadOptionError(
            f"Cannot write video to '{target.name}': the output must end in {', '.join(CONTAINERS)}."
        )
    return found


def _clock(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = round(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class _Transcoder:
    """One pass over the input: video packets are decoded, stylized and encoded; audio is remuxed."""

    def __init__(self, source: Path, tmp: Path, muxer: str, encoder: str, stylizer: FrameStylizer,
                 start: float, duration: float | None, progress: ProgressFn | None,
                 masks: _Masks | None = None) -> None:  # fmt: skip
        import av

        self.av = av
        self.source, self.tmp, self.muxer, self.encoder = source, tmp, muxer, encoder
        self.stylizer, self.start, self.duration, self.progress = stylizer, start, duration, progress
        self.masks = masks
        self.label = f"Video '{source}'"
        self.frames = 0
        self.seconds = 0.0
        self.size = (0, 0)
        self.audio_streams = 0
        self.rotation = 0.0
        self.input: Any = None
        self.output: Any = None
        try:
            self.input = av.open(str(source), "r")
        except av.FFmpegError as exc:
            raise InvalidVideoError(f"{self.label} cannot be read: {_reason(exc)} (corrupt, truncated "
                                    "or not a video).") from None  # fmt: skip
        self.video: Any = None
        if not self.input.streams.video:
            kinds = sorted({s.type for s in self.input.streams})
            has = f"only {' and '.join(kinds)}" if kinds else "no streams"
            self.input.close()
            raise InvalidVideoError(f"{self.label} has no video stream ({has}).")
        self.video = self.input.streams.video[0]
        self.video.thread_type = "AUTO"  # frame threads in the decoder: it runs beside the network
        try:
            self._check_size()
        except BaseException:
            self.input.close()  # __exit__ will not run for a constructor that failed
            raise

    def _check_size(self) -> None:
        from sdk import imaging

        cc = self.video.codec_context
        w, h = int(cc.width or 0), int(cc.height or 0)
        if w and h:  # the header's size: a frame too big is refused before any is decoded
            imaging._check_dimensions((w, h), f"the frames of {self.label.lower()}", self.stylizer.limits)

    def __enter__(self) -> _Transcoder:
        return self

    def __exit__(self, *exc: object) -> None:
        for container in (self.output, self.input):
            if container is not None:
                try:
                    container.close()
                except self.av.FFmpegError:  # closing after a failure: the first error is the one to report
                    log.debug("closing a container failed", exc_info=True)

    # -- the pass ------------------------------------------------------------------------------

    def run(self) -> None:
        av = self.av
        video = self.video
        tb = video.time_base or Fraction(1, 90000)
        self.tb = tb
        self.start_pts = round(self.start / tb)
        self.end_time = None if self.duration is None else self.start + self.duration
        if self.start > 0:
            try:  # to the key frame before start; frames before start are decoded and dropped
                self.input.seek(self.start_pts + (video.start_time or 0), stream=video, backward=True)
            except av.FFmpegError as exc:
                where = f"{self.label} cannot seek to {self.start:g} s"
                raise InvalidVideoError(f"{where}: {_reason(exc)}.") from None
        self.audio_in = list(self.input.streams.audio)
        self.total = self._expected_frames()
        self._check_masks()
        self.pending: list[tuple[np.ndarray, int]] = []
        self.audio_map: dict[int, Any] = {}
        self.audio_queue: list[Any] = []  # audio packets met before the output exists (a few)
        self.first_pts: int | None = None
        self.last_pts: int | None = None
        self.last_duration = 0
        self.clock = time.perf_counter()
        try:
            for packet in self.input.demux(video, *self.audio_in):
                if packet.stream.type == "video":
                    for frame in packet.decode():
                        if self._take(frame):
                            return self._finish()
                else:
                    self._audio(packet)
        except av.FFmpegError as exc:
            read = self.frames + len(self.pending)
            raise InvalidVideoError(f"{self.label} is corrupt or truncated after {read} frames: "
                                    f"{_reason(exc)}.") from None  # fmt: skip
        self._finish()

    def _check_masks(self) -> None:
        """Fewer per-frame masks than frames: refused now where the container says how many
        frames there are (the whole clip); otherwise when the frame without one comes."""
        masks = self.masks
        if masks is None or masks.count is None:
            return
        masks.frames_expected = self.total
        exact = self.start == 0 and self.duration is None and int(self.video.frames or 0) > 0
        if exact and self.total is not None and self.total > masks.count:
            raise masks.too_few(self.total)

    def _expected_frames(self) -> int | None:
        video = self.video
        frames = int(video.frames or 0)
        duration = float(video.duration * video.time_base) if video.duration and video.time_base else None
        if duration is None and self.input.duration:
            duration = self.input.duration / 1_000_000
        rate = float(video.average_rate or video.guessed_rate or 0)
        if self.start == 0 and self.duration is None and frames:
            return frames
        if duration is None or not rate:
            return frames or None
        span = max(0.0, duration - self.start)
        if self.duration is not None:
            span = min(span, self.duration)
        return max(1, round(span * rate))

    def _take(self, frame: Any) -> bool:
        """Queue one decoded frame; True once past the end of the part asked for."""
        t = frame.time
        if t is not None:
            rel = t - float((self.video.start_time or 0) * self.tb)
            if rel < self.start - 1e-6:
                return False
            if self.end_time is not None and rel >= self.end_time - 1e-6:
                return True
        if self.output is None:
            self._open_output(frame)
        pts = frame.pts
        if pts is None:  # raw streams without timestamps: one frame duration after the last
            pts = (self.last_pts + max(1, self.last_duration)) if self.last_pts is not None else 0
        if self.first_pts is None:
            self.first_pts = pts
        pts -= self.first_pts
        if self.last_pts is not None:
            if pts <= self.last_pts:  # duplicate or backward timestamps would stop the encoder
                pts = self.last_pts + 1
            self.last_duration = pts - self.last_pts
        self.last_pts = pts
        rgb = frame.to_ndarray(format="rgb24", width=self.size[0], height=self.size[1], interpolation="AREA")
        self.pending.append((rgb, pts))
        if len(self.pending) >= _BATCH:
            self._flush_pending()
        return False

    def _open_output(self, frame: Any) -> None:
        av = self.av
        from sdk import imaging

        w, h = int(frame.width), int(frame.height)
        imaging._check_dimensions((w, h), f"the frames of {self.label.lower()}", self.stylizer.limits)
        max_side = self.stylizer.request.max_side
        if max_side is not None and max(w, h) > max_side:
            scale = max_side / max(w, h)
            # Even sides: 4:2:0 video needs them, and the engine never upscales what it gets.
            w, h = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)
        self.size = (w, h)
        try:
            self.output = av.open(str(self.tmp), "w", format=self.muxer)
            rate = self.video.average_rate or self.video.guessed_rate or 25
            stream = self.output.add_stream(self.encoder, rate=rate)
            stream.width, stream.height = w, h
            # 4:2:0 is what every player takes; it needs even sides, else keep full chroma.
            stream.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
            stream.time_base = self.tb  # the input's timestamps as they are: variable frame rates stay
            stream.codec_context.time_base = self.tb
            if self.encoder == "libx264":
                stream.options = {"crf": "18", "preset": "veryfast"}
            else:
                stream.options = {"crf": "24", "b": "0", "deadline": "realtime", "cpu-used": "8",
                                  "row-mt": "1"}  # fmt: skip
            matrix = _display_matrix(frame)
            if matrix is not None:
                stream.set_display_matrix(matrix)
                self.rotation = float(frame.rotation or 0)
            self.out_video = stream
            supported = self.output.supported_codecs
            for ain in self.audio_in:
                name = ain.codec_context.name
                if name not in supported:
                    raise BadOptionError(
                        f"The audio of {self.label.lower()} ({name}) cannot be copied into "
                        f"a {self.muxer} file without re-encoding; write .mkv instead."
                    )
                self.audio_map[ain.index] = self.output.add_stream_from_template(ain)
            self.audio_streams = len(self.audio_map)
        except av.FFmpegError as exc:
            raise InvalidVideoError(f"Cannot write the output video: {_reason(exc)}.") from None
        for packet in self.audio_queue:
            self._audio(packet)
        self.audio_queue.clear()

    def _audio(self, packet: Any) -> None:
        if packet.dts is None:  # the demuxer's flush packet
            return
        if self.output is None:
            self.audio_queue.append(packet)
            return
        out = self.audio_map.get(packet.stream.index)
        if out is None:
            return
        tb = packet.time_base or packet.stream.time_base
        if (self.start > 0 or self.end_time is not None) and packet.pts is not None:
            # A cut: the packets whose time falls inside it (the whole clip: every packet,
            # encoder priming included).
            t = float((packet.pts - (packet.stream.start_time or 0)) * tb)
            if t < self.start - 1e-6 or (self.end_time is not None and t >= self.end_time):
                return
        if self.start > 0:  # the cut starts at zero in the output, audio and video alike
            shift = round(self.start / tb)
            packet.pts = None if packet.pts is None else packet.pts - shift
            packet.dts = packet.dts - shift
        packet.stream = out
        self.output.mux(packet)

    def _flush_pending(self) -> None:
        if not self.pending:
            return
        batch, self.pending = self.pending, []
        outputs = self.stylizer.process_many([rgb for rgb, _ in batch])
        for out, (_, pts) in zip(outputs, batch, strict=True):
            vf = self.av.VideoFrame.from_ndarray(out, format="rgb24")
            vf.pts = pts
            vf.time_base = self.tb
            for packet in self.out_video.encode(vf):
                self.output.mux(packet)
            self.frames += 1
            self._report()

    def _report(self) -> None:
        if self.progress is None:
            return
        elapsed = time.perf_counter() - self.clock
        rate = self.frames / elapsed if elapsed > 0 else 0.0
        total = self.total if self.total is None or self.total >= self.frames else None
        eta = (total - self.frames) / rate if total is not None and rate > 0 else None
        self.progress(VideoProgress(self.frames, total, rate, eta))

    def _finish(self) -> None:
        self._flush_pending()
        if self.frames == 0:
            where = f" after {self.start:g} s" if self.start else ""
            raise InvalidVideoError(f"{self.label} has no video frames{where}.")
        for packet in self.out_video.encode():
            self.output.mux(packet)
        assert self.last_pts is not None
        end = self.last_pts + max(1, self.last_duration)
        self.seconds = float(end * self.tb)


def _display_matrix(frame: Any) -> list[int] | None:
    """The frame's display matrix (rotation, flips) as FFmpeg's 9 int32s, or None."""
    for data in getattr(frame, "side_data", ()):
        if "DISPLAYMATRIX" in str(data.type):
            values = np.frombuffer(bytes(data), dtype="<i4")
            return [int(v) for v in values[:9]] if values.size >= 9 else None
    return None


def _reason(exc: BaseException) -> str:
    text = str(getattr(exc, "strerror", None) or exc).strip().rstrip(".")
    return text or type(exc).__name__


__all__ = [
    "CONTAINERS",
    "DEFAULT_TEMPORAL",
    "MASK_SUFFIXES",
    "FrameStylizer",
    "InvalidVideoError",
    "TemporalBlender",
    "VideoProgress",
    "VideoReport",
    "check_temporal",
    "mask_files",
    "stylize_frames",
    "stylize_video",
    "warping_error",
]
