"""The one image pipeline of stylekit: decode, validate, convert, pad, tile, blend, encode.

The local engine, the TorchServe handler and the web app all go through this module, so an
image is read, checked and written the same way on every path. See ``docs/imaging.md``.

Decoding turns any accepted input into a :class:`DecodedImage`: an HxWx3 ``uint8`` sRGB array
with EXIF orientation applied and the alpha channel (if any) kept aside, so that models only
ever see RGB and the alpha can be put back on the result. An embedded ICC profile (Adobe RGB,
Display P3, a grey or a CMYK profile) is applied on the way in; outputs are encoded as sRGB
and say so.

Safety: the encoded size, the pixel count and the longest side are checked against
:class:`ImageLimits` from the file header, before any pixel is decoded. Pillow's own
decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) is left on and untouched; when it
fires, the caller gets :class:`~sdk.errors.ImageTooLargeError` like for our own limits.
Truncated files are errors (``ImageFile.LOAD_TRUNCATED_IMAGES`` is never switched on), and
only a short list of common raster formats is tried, keeping Pillow's rarer parsers (and EPS,
which would run Ghostscript) away from untrusted input.
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Union

import numpy as np
from PIL import Image, ImageCms, ImageOps, PngImagePlugin, UnidentifiedImageError

from sdk import settings, wire
from sdk.errors import BadOptionError, ImageTooLargeError, InvalidImageError, InvalidMaskError, StylekitError
from sdk.formats import MIME, format_from_name, mime_type, normalise_format

if TYPE_CHECKING:
    # torch is imported where tensors are made, not here: decoding and encoding (all that the
    # remote client needs) must not pay torch's ~1.8 s import.
    import torch

log = logging.getLogger(__name__)

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, BinaryIO, Image.Image, np.ndarray]

# Formats decode() accepts. The JPEG opener also reads MPO, what many phone cameras write.
DECODE_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
# run_tiled with a guide: tones broader than this many guide pixels (Gaussian sigma) come from
# the guide, finer detail from the tiles. Small enough to keep the guide's own brush strokes
# out, large enough to fix the colour shifts that per-tile normalisation causes.
GUIDE_SIGMA = 8.0
# Networks are run on at least this many pixels a side: a smaller image (1x1, a 4000x16 strip, a
# photo scaled to max_side=3) is mirror-padded up to it and cropped back. The built-in networks
# fail below 8 px (reflect padding wider than the feature map after two stride-2 convolutions);
# 32 leaves room for generators with deeper downsampling.
MIN_MODEL_SIDE = 32
# JPEG has no alpha: transparent pixels are composited on this colour before encoding.
JPEG_BACKGROUND: tuple[int, int, int] = (255, 255, 255)

# Pillow raises many exception types on malformed data, depending on the format plugin.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError)
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class ImageLimits:
    """Limits checked before an image is decoded; settings, not constants.

    ``ImageLimits.from_env()`` (what :func:`decode` uses when given no limits) lets the
    environment override the defaults: ``STYLEKIT_MAX_BYTES``, ``STYLEKIT_MAX_PIXELS``,
    ``STYLEKIT_MAX_SIDE``. Pillow's global guard ``Image.MAX_IMAGE_PIXELS`` (89.5 M pixels by
    default) applies as well, so the lower of the two pixel limits wins.
    """

    max_bytes: int = 64 * 2**20  # encoded input size
    max_pixels: int = 100_000_000  # decoded width * height
    max_side: int = 20_000  # longest side in pixels

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_pixels", "max_side"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadOptionError(f"ImageLimits.{name} must be a positive integer, not {value!r}.")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ImageLimits:
        """Defaults, overridden by ``STYLEKIT_MAX_BYTES`` / ``_MAX_PIXELS`` / ``_MAX_SIDE``."""
        variables = {"max_bytes": settings.MAX_BYTES, "max_pixels": settings.MAX_PIXELS,
                     "max_side": settings.MAX_SIDE}  # fmt: skip
        values: dict[str, int] = {}
        for name, var in variables.items():
            raw = settings.get(var, environ)
            if raw is None:
                continue
            try:
                values[name] = int(raw)
            except ValueError:
                raise BadOptionError(f"{var} must be a positive integer, not {raw!r}.") from None
        return cls(**values)


@dataclass
class DecodedImage:
    """An image ready for a model: RGB pixels, alpha kept aside, and where it came from."""

    rgb: np.ndarray  # HxWx3 uint8, EXIF orientation applied
    alpha: np.ndarray | None  # HxW uint8 if the input had transparency, else None
    source_mode: str  # original PIL mode ("RGB", "CMYK", "I;16", "P", "RGBA", ...)
    format: str | None  # "JPEG", "PNG", ... (None for arrays and PIL images without one)
    size: tuple[int, int]  # (width, height) after EXIF transpose


# --------------------------------------------------------------------------- decoding


def decode(src: ImageInput, limits: ImageLimits | None = None, *, label: str | None = None) -> DecodedImage:
    """Decode a path, bytes, binary file object, PIL image or uint8 array into RGB + alpha.

    ``label`` names bytes and file objects in messages ("the mask"); default "the image data".

    Animated images (GIF, APNG, WebP, MPO) give their first frame. Raises
    :class:`InvalidImageError` for anything that is not a readable image and
    :class:`ImageTooLargeError` when a limit is exceeded.
    """
    lim = limits if limits is not None else ImageLimits.from_env()
    if isinstance(src, np.ndarray):
        return _decode_array(src, lim)
    if isinstance(src, Image.Image):
        label = _label_for_pil(src)
        _check_dimensions(src.size, label, lim)
        return _decode_pil(src, label, lim, owned=False)
    if isinstance(src, (str, os.PathLike)):
        return _decode_path(Path(src), lim)
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
        return _decode_bytes(data, label or "the image data", lim)
    read = getattr(src, "read", None)
    if callable(read):
        name = getattr(src, "name", None)
        label = f"'{name}'" if isinstance(name, str) and name else (label or "the uploaded file")
        chunk = read(lim.max_bytes + 1)
        if not isinstance(chunk, (bytes, bytearray)):
            raise InvalidImageError(f"Cannot read an image from {label}: it is open in text mode.")
        _check_byte_size(len(chunk), label, lim, lower_bound=True)
        return _decode_bytes(bytes(chunk), label, lim)
    raise InvalidImageError(
        f"Cannot read an image from a {type(src).__name__}; give a path, bytes, a binary file, "
        "a PIL image or an HxWx3 uint8 array."
    )


def _label_for_pil(im: Image.Image) -> str:
    name = getattr(im, "filename", "")
    return f"'{name}'" if isinstance(name, str) and name else "the given image"


def _decode_path(path: Path, lim: ImageLimits) -> DecodedImage:
    label = f"'{path}'"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise InvalidImageError(f"Image file {label} does not exist.") from None
    except OSError as exc:
        raise InvalidImageError(f"Cannot read image file {label}: {exc.strerror or exc}.") from None
    if path.is_dir():
        raise InvalidImageError(f"{label} is a folder, not an image file.")
    _check_byte_size(st.st_size, label, lim)
    try:
        with path.open("rb") as fh:
            return _decode_stream(fh, label, lim, head=lambda: _read_head(path))
    except OSError as exc:  # opening the file itself (permissions, ...)
        raise InvalidImageError(f"Cannot read image file {label}: {exc.strerror or exc}.") from None


def _read_head(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(16)


def _decode_bytes(data: bytes, label: str, lim: ImageLimits) -> DecodedImage:
    _check_byte_size(len(data), label, lim)
    return _decode_stream(io.BytesIO(data), label, lim, head=lambda: data[:16])


def _check_byte_size(n: int, label: str, lim: ImageLimits, *, lower_bound: bool = False) -> None:
    if n == 0:
        raise InvalidImageError(f"{_cap(label)} is empty (0 bytes), not an image.")
    if n > lim.max_bytes:
        size = f"more than {_mb(lim.max_bytes)}" if lower_bound else _mb(n)
        raise ImageTooLargeError(f"{_cap(label)} is {size}, over the limit of {_mb(lim.max_bytes)}.")


def _decode_stream(fh: IO[bytes], label: str, lim: ImageLimits, head: Callable[[], bytes]) -> DecodedImage:
    try:
        with Image.open(fh, formats=DECODE_FORMATS) as im:
            _check_dimensions(im.size, label, lim)
            return _decode_pil(im, label, lim, owned=True)
    except StylekitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own guard fired (possibly as a warning turned into an error by a filter).
        raise ImageTooLargeError(
            f"{_cap(label)} is too large to decode safely (Pillow's decompression-bomb guard: {exc})"
        ) from None
    except UnidentifiedImageError:
        kind = _sniff_non_image(head())
        raise InvalidImageError(
            f"{_cap(label)} is {kind}; supported formats are JPEG, PNG, WebP, GIF, BMP and TIFF."
        ) from None
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(f"{_cap(label)} is a corrupt or truncated image ({_reason(exc)}).") from None


def _sniff_non_image(head: bytes) -> str:
    if head.startswith(b"%PDF"):
        return "a PDF document, not an image"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive, not an image"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "not an image in a supported format"
    return "text, not an image"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().rstrip(".")
    return text or type(exc).__name__


def _check_dimensions(size: tuple[int, int], label: str, lim: ImageLimits) -> None:
    """Reject images over the limits using only the header's size (nothing decoded yet)."""
    w, h = size
    if w < 1 or h < 1:
        raise InvalidImageError(f"{_cap(label)} has no pixels ({w}x{h}).")
    if max(w, h) > lim.max_side:
        raise ImageTooLargeError(
            f"{_cap(label)} is {w}x{h} pixels; its longest side is over the limit of {lim.max_side:,}."
        )
    guard = Image.MAX_IMAGE_PIXELS
    limit = lim.max_pixels if guard is None else min(lim.max_pixels, int(guard))
    if w * h > limit:
        raise ImageTooLargeError(
            f"{_cap(label)} is {w}x{h} = {w * h:,} pixels, over the limit of {limit:,} pixels."
        )


def _decode_pil(im: Image.Image, label: str, lim: ImageLimits, *, owned: bool) -> DecodedImage:
    try:
        n_frames = int(getattr(im, "n_frames", 1))
        if n_frames > 1:
            # A freshly opened file is on its first frame; a PIL image handed in keeps its own.
            log.debug("%s has %d frames; using frame %d", label, n_frames, im.tell())
        im.load()
        source_mode = im.mode
        fmt = im.format
        icc = im.info.get("icc_profile")
        im = _apply_orientation(im, owned=owned)
        _check_dimensions(im.size, label, lim)
        rgb, alpha = _split_rgb_alpha(im, icc if isinstance(icc, bytes) else None)
    except StylekitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLargeError(f"{_cap(label)} is too large to decode safely ({exc})") from None
    except _DECODE_ERRORS as exc:
        raise InvalidImageError(f"{_cap(label)} is a corrupt or truncated image ({_reason(exc)}).") from None
    h, w = rgb.shape[:2]
    return DecodedImage(rgb=rgb, alpha=alpha, source_mode=source_mode, format=fmt, size=(w, h))


def _apply_orientation(im: Image.Image, *, owned: bool) -> Image.Image:
    """Rotate/flip per the EXIF orientation tag; never mutates an image the caller owns."""
    if im.getexif().get(_ORIENTATION_TAG, 1) in (None, 1):
        return im
    if owned:
        ImageOps.exif_transpose(im, in_place=True)
        return im
    return ImageOps.exif_transpose(im)


def _split_rgb_alpha(im: Image.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None]:
    """HxWx3 sRGB pixels and the alpha channel (or None), through ``icc`` when it is usable."""
    if im.mode == "CMYK":
        # Print profiles differ a lot; without one, Pillow's plain conversion is the fallback.
        convert = _srgb_converter(icc, "CMYK") if icc else None
        return (np.array(im.convert("RGB")) if convert is None else convert(im)), None
    colour, alpha = _colour_and_alpha(im)
    mode = "L" if colour.ndim == 2 else "RGB"
    # Looked up before any pixel is touched: an sRGB profile (most photos) costs nothing.
    convert = _srgb_converter(icc, mode) if icc else None
    if convert is not None:
        return convert(Image.fromarray(colour, mode)), alpha
    return (_grey_to_rgb(colour) if mode == "L" else colour), alpha


def _colour_and_alpha(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """The colour channels as 8-bit HxW grey or HxWx3 RGB, and the alpha kept aside.

    Grey stays grey here so that an embedded grey profile can still be applied to it.
    """
    mode = im.mode
    if mode.startswith("I;16") or mode == "I":
        # 16-bit grey (PNG/TIFF): scale 0..65535 to 0..255; clipping would turn most of it white.
        grey = np.asarray(im).astype(np.float32)
        return np.rint(np.clip(grey, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8), None
    if mode == "F":
        # Float images are taken as 0..1 when they fit, else as 0..255.
        flt = np.nan_to_num(np.asarray(im, dtype=np.float32))
        scale = 255.0 if flt.size and float(flt.max()) <= 1.0 else 1.0
        return np.rint(np.clip(flt * scale, 0, 255)).astype(np.uint8), None
    is_grey = Image.getmodebase(mode) == "L"
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or im.has_transparency_data:
        rgba = np.asarray(im.convert("RGBA"))
        colour = rgba[..., 0] if is_grey else rgba[..., :3]
        return np.ascontiguousarray(colour), np.ascontiguousarray(rgba[..., 3])
    if is_grey:
        return np.asarray(im if mode == "L" else im.convert("L")), None
    # np.array, not asarray: a writable array (torch.from_numpy warns on read-only ones).
    return np.array(im if mode == "RGB" else im.convert("RGB")), None


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(grey[..., None], (*grey.shape, 3)))


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


# Cached per profile: phones and cameras embed the same few profiles in every photo, so a
# server builds each conversion (and checks it against sRGB) once, not once per image.
@functools.lru_cache(maxsize=32)
def _srgb_converter(icc: bytes, mode: str) -> Callable[[Image.Image], np.ndarray] | None:
    """How to bring pixels in ``mode`` described by ``icc`` to sRGB, or None when there is
    nothing to do: an unusable profile (logged at debug level, once per profile, then
    ignored), one that does not fit the pixels (a grey profile on colour, say), or one that
    is sRGB already. sRGB is recognised by what the profile does, not by its name:
    descriptions vary from maker to maker ("sRGB IEC61966-2.1", "sRGB built-in", none)."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode == "L":
            # Grey has only 256 values: convert them all exactly, once, into a lookup table.
            # (Little CMS's optimised 8-bit grey transform samples the curve at 33 points,
            # up to 10 levels off near black for a linear grey profile.)
            exact = ImageCms.buildTransform(
                source, _srgb_profile(), "L", "RGB", flags=ImageCms.Flags.NOOPTIMIZE
            )
            table = np.asarray(exact.apply(Image.fromarray(np.arange(256, dtype=np.uint8)[None])))[0]
        else:
            transform = ImageCms.buildTransform(source, _srgb_profile(), mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.debug("ignoring an unusable ICC profile for %s pixels (%d bytes): %s", mode, len(icc), exc)
        return None
    name = source.profile.profile_description
    if mode == "L":
        if _within_a_level(table, np.repeat(np.arange(256)[:, None], 3, axis=1)):
            return None
        log.debug("converting grey pixels to sRGB from ICC profile %r", name)
        return functools.partial(_look_up, table)
    if mode == "RGB":
        levels = np.arange(0, 256, 17, dtype=np.uint8)
        grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
        probe = np.concatenate([grid, np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)])
        if _within_a_level(np.asarray(transform.apply(Image.fromarray(probe[None])))[0], probe):
            return None
    log.debug("converting %s pixels to sRGB from ICC profile %r", mode, name)
    return functools.partial(_apply_transform, transform)


def _within_a_level(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two sets of pixel values differ by rounding at most: the profile is sRGB."""
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()) <= 1


def _look_up(table: np.ndarray, grey: Image.Image) -> np.ndarray:
    rgb: np.ndarray = table[np.asarray(grey)]
    return rgb


def _apply_transform(transform: ImageCms.ImageCmsTransform, colour: Image.Image) -> np.ndarray:
    return np.array(transform.apply(colour))


def _decode_array(arr: np.ndarray, lim: ImageLimits) -> DecodedImage:
    label = "the array"
    if arr.dtype != np.uint8:
        raise InvalidImageError(f"The image array must have dtype uint8, not {arr.dtype}.")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        mode = "L"
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        mode = "RGB" if arr.shape[2] == 3 else "RGBA"
    else:
        raise InvalidImageError(f"The image array must be HxW, HxWx3 or HxWx4, not shape {arr.shape}.")
    h, w = arr.shape[:2]
    _check_dimensions((w, h), label, lim)
    if mode == "L":
        rgb, alpha = _grey_to_rgb(arr), None
    elif mode == "RGB":
        rgb, alpha = np.ascontiguousarray(arr), None
    else:
        rgb, alpha = np.ascontiguousarray(arr[..., :3]), np.ascontiguousarray(arr[..., 3])
    return DecodedImage(rgb=rgb, alpha=alpha, source_mode=mode, format=None, size=(w, h))


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def _cap(label: str) -> str:
    return label[:1].upper() + label[1:]


# --------------------------------------------------------------------------- geometry


def resize_max_side(img: DecodedImage, max_side: int | None) -> DecodedImage:
    """Shrink so the longest side is at most ``max_side`` (aspect kept); never upscales."""
    if max_side is None:
        return img
    wire.check_int("max_side", max_side, 1, wire.MAX_SIDE)
    w, h = img.size
    if max(w, h) <= max_side:
        return img
    scale = max_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    rgb = np.array(_resize(Image.fromarray(img.rgb, "RGB"), size))
    alpha = None if img.alpha is None else np.array(_resize(Image.fromarray(img.alpha, "L"), size))
    return replace(img, rgb=rgb, alpha=alpha, size=size)


def _resize(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    # reducing_gap first shrinks by an integer factor (fast box filter), then Lanczos.
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> [1, 3, H, W] float32 in [0, 1] (one allocation)."""
    import torch

    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise BadOptionError(f"to_tensor expects an HxWx3 uint8 array, not {rgb.dtype} {rgb.shape}.")
    # astype makes the one new (writable, CHW-ordered) buffer; from_numpy then shares it.
    chw = rgb.transpose(2, 0, 1).astype(np.float32, order="C")
    return torch.from_numpy(chw).unsqueeze(0).div_(255.0)


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """[1, 3, H, W] or [3, H, W] float in [0, 1] -> HxWx3 uint8 (clamped, rounded).

    Works in bands of rows so a big image needs no second full-size float buffer.
    """
    if t.dim() == 4:
        if t.shape[0] != 1:
            raise BadOptionError(f"to_uint8 takes one image, not a batch of {t.shape[0]}.")
        t = t[0]
    if t.dim() != 3 or t.shape[0] != 3:
        raise BadOptionError(f"to_uint8 expects [1, 3, H, W] or [3, H, W], not {tuple(t.shape)}.")
    out = np.empty((*t.shape[-2:], 3), dtype=np.uint8)
    _store_uint8(t.detach(), out)
    return out


def _store_uint8(t: torch.Tensor, dst: np.ndarray, *, scratch: bool = False) -> None:
    """Clamp, scale and round [3, h, w] float in [0, 1] into ``dst`` (h x w x 3 ``uint8``).

    In bands of rows, so a big image needs no second full-size float buffer. ``scratch``: ``t``
    is float32 and may be overwritten (the tiled path's band), which saves the band's copy.
    """
    import torch

    band = max(1, 2**22 // max(1, t.shape[-1]))
    for r0 in range(0, t.shape[-2], band):
        part = t[:, r0 : r0 + band]
        part = part.clamp_(0.0, 1.0) if scratch else part.float().clamp(0.0, 1.0)
        dst[r0 : r0 + band] = part.mul_(255.0).round_().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def pad_to_multiple(
    x: torch.Tensor, multiple: int, extra: int = 0, min_side: int = 0
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad [N, C, H, W] so H and W become multiples of ``multiple``, at least ``min_side``.

    ``extra`` pixels of mirrored context go on every side first; the rest of the padding goes
    on the right and bottom only, so pixel (0, 0) stays on the model's stride grid (what makes
    tiled and untiled runs line up). Returns the padded tensor and (left, right, top, bottom).
    """
    if multiple < 1 or extra < 0 or min_side < 0:
        raise BadOptionError(
            "pad_to_multiple needs multiple >= 1 and extra, min_side >= 0, "
            f"not {multiple}, {extra}, {min_side}."
        )
    h, w = x.shape[-2:]
    bottom = extra + _grow(h + 2 * extra, multiple, min_side)
    right = extra + _grow(w + 2 * extra, multiple, min_side)
    pads = (extra, right, extra, bottom)
    return _reflect_pad(x, pads), pads


def _grow(length: int, multiple: int, min_side: int) -> int:
    """How much to add to ``length`` to reach a multiple of ``multiple`` that is >= ``min_side``."""
    target = max(length, min_side)
    return target + (-target) % multiple - length


def _reflect_pad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    import torch.nn.functional as F

    left, right, top, bottom = pads
    if not any(pads):
        return x
    h, w = x.shape[-2:]
    if max(left, right) < w and max(top, bottom) < h:
        return F.pad(x, (left, right, top, bottom), mode="reflect")
    # Padding wider than the image (tiny inputs): mirror repeatedly by index.
    iy = _mirror_index(h, top, bottom, x.device)
    ix = _mirror_index(w, left, right, x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def _mirror_index(n: int, before: int, after: int, device: torch.device) -> torch.Tensor:
    import torch

    idx = torch.arange(-before, n + after, device=device)
    if n == 1:
        return torch.zeros_like(idx)
    period = 2 * (n - 1)
    idx = idx.remainder(period)
    return torch.where(idx >= n, period - idx, idx)


def unpad(x: torch.Tensor, pads: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`: crop (left, right, top, bottom) off [..., H, W]."""
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


# --------------------------------------------------------------------------- tiling


def needs_tiling(width: int, height: int, pixel_budget: int) -> bool:
    """Whether an image of this size should be run in tiles rather than in one piece."""
    return width * height > pixel_budget


def tile_spans(length: int, tile: int, overlap: int, multiple: int) -> list[tuple[int, int]]:
    """Split ``[0, length)`` into spans of about ``tile`` pixels that overlap by >= ``overlap``.

    Starts are multiples of ``multiple`` (so every tile sits on the model's stride grid); the
    last span ends at ``length`` and may be up to ``multiple - 1`` pixels longer than ``tile``.
    """
    if length <= tile:
        return [(0, length)]
    step = max(multiple, (tile - overlap) // multiple * multiple)
    # Spread the tiles evenly (rather than a fixed step and a last tile pulled far back), adding
    # one while aligning the starts down to the multiple leaves an overlap short.
    n = 1 + -(-(length - tile) // step)
    while True:
        starts = sorted({(i * (length - tile) // (n - 1)) // multiple * multiple for i in range(n)})
        ends = [s + tile for s in starts[:-1]] + [length]
        if all(ends[i] - starts[i + 1] >= overlap for i in range(len(starts) - 1)):
            break
        n += 1
    return list(zip(starts, ends, strict=True))


def _axis_weights(spans: list[tuple[int, int]], length: int, overlap: int) -> list[torch.Tensor]:
    """1-D blend weights per span: linear ramps centred in each overlap, summing to 1 everywhere."""
    import torch

    raw: list[torch.Tensor] = []
    for i, (s, e) in enumerate(spans):
        pos = torch.arange(s, e, dtype=torch.float32) + 0.5
        w = torch.ones(e - s, dtype=torch.float32)
        if i > 0:
            a, r = _ramp(spans[i - 1][1], s, overlap)
            w = torch.minimum(w, ((pos - a) / r).clamp(0.0, 1.0))
        if i + 1 < len(spans):
            a, r = _ramp(e, spans[i + 1][0], overlap)
            w = torch.minimum(w, (1.0 - (pos - a) / r).clamp(0.0, 1.0))
        raw.append(w)
    total = torch.zeros(length, dtype=torch.float32)
    for (s, e), w in zip(spans, raw, strict=True):
        total[s:e] += w
    # Three spans can overlap near the far edge; normalising keeps the sum exactly 1.
    return [w / total[s:e].clamp_min(1e-12) for (s, e), w in zip(spans, raw, strict=True)]


def _ramp(prev_end: int, next_start: int, overlap: int) -> tuple[float, float]:
    """Start and length of the ramp for the overlap [next_start, prev_end)."""
    shared = prev_end - next_start
    r = float(max(1, min(overlap, shared)))
    return next_start + (shared - r) / 2.0, r


def run_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    multiple: int,
    guide: torch.Tensor | None = None,
    min_side: int = 0,
) -> torch.Tensor:
    """Run ``fn`` over overlapping tiles of ``x`` [N, 3, H, W] (CPU) and blend the results.

    Each tile gets ``overlap`` pixels of real context on its inner sides (rounded up to the
    multiple; cropped off again), is padded to the multiple, and goes through ``fn``; outputs
    are added up with linear ramps across the overlaps, so no seam shows. ``x`` may be float
    in [0, 1] or ``uint8`` (converted one tile at a time, which saves a full-size float copy).
    Returns the blended [N, C, H, W] float32 tensor. Memory: one tile's worth of model work,
    one band of tile rows and the float output; :func:`run_tiled_uint8` (what the engine uses)
    writes a ``uint8`` image instead and so never holds a full-size float tensor.

    ``guide`` ([N, C, h, w], smaller than ``x``): ``fn``'s output for the whole image at a
    lower resolution. When given, each tile keeps its own fine detail but takes its broad
    tones (below :data:`GUIDE_SIGMA` guide pixels) from the guide. Generators with instance
    normalisation see only their tile's statistics; without a guide a tile can come out in
    other colours than the whole picture would (smoothly blended, but visibly off).
    """
    import torch

    out: torch.Tensor | None = None
    for r0, r1, rows in _tiled_rows(fn, x, tile, overlap, multiple, guide, min_side):
        if out is None:
            out = torch.empty((*rows.shape[:2], *x.shape[-2:]), dtype=torch.float32)
        out[:, :, r0:r1] = rows
    if out is None:  # pragma: no cover - tile_spans always yields at least one span
        raise StylekitError("Tiling produced no tiles.")
    return out


def run_tiled_uint8(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    multiple: int,
    guide: torch.Tensor | None = None,
    min_side: int = 0,
) -> np.ndarray:
    """:func:`run_tiled` for one image ([1, 3, H, W]) straight to an HxWx3 ``uint8`` array.

    The same pixels as ``to_uint8(run_tiled(...))``, bit for bit, but rows are rounded into the
    ``uint8`` result as soon as the last tile touching them is added, so only one band of tile
    rows is ever held in float (for a 6000x4000 photo in 768-pixel tiles: 55 MB, against
    288 MB for the whole float output and 72 MB for the result).
    """
    if x.dim() == 4 and x.shape[0] != 1:
        raise BadOptionError(f"run_tiled_uint8 takes one image, not a batch of {x.shape[0]}.")
    out = np.empty((*x.shape[-2:], 3), dtype=np.uint8)
    for r0, r1, rows in _tiled_rows(fn, x, tile, overlap, multiple, guide, min_side):
        if rows.shape[1] != 3:
            raise StylekitError(f"The model returned {rows.shape[1]} channels for a tile; an image needs 3.")
        _store_uint8(rows[0], out[r0:r1], scratch=True)
    return out


def _tiled_rows(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    multiple: int,
    guide: torch.Tensor | None,
    min_side: int,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """The tiling behind :func:`run_tiled`: yields ``(r0, r1, rows)``, the blended output rows
    [r0, r1) as [N, C, r1 - r0, W] float32, top to bottom, once no later tile touches them.

    ``rows`` is a view into a scratch band that the next step reuses: copy it or use it up
    (the consumer may overwrite it) before asking for more.
    """
    import torch

    if x.dim() != 4:
        raise BadOptionError(f"run_tiled expects [N, C, H, W], not {tuple(x.shape)}.")
    if multiple < 1 or overlap < 0 or tile - overlap < multiple:
        raise BadOptionError(
            f"Tiling needs multiple >= 1, overlap >= 0 and tile - overlap >= multiple "
            f"(tile={tile}, overlap={overlap}, multiple={multiple})."
        )
    n, _, h, w = x.shape
    if guide is not None and (guide.dim() != 4 or guide.shape[0] != n):
        raise BadOptionError(f"The guide must be [N, C, h, w] with N = {n}, not {tuple(guide.shape)}.")
    low_guide = None if guide is None else _blur(guide.float(), GUIDE_SIGMA)
    factor = 1 if guide is None else max(1, round(max(h / guide.shape[-2], w / guide.shape[-1])))
    context = -(-overlap // multiple) * multiple
    ys, xs = tile_spans(h, tile, overlap, multiple), tile_spans(w, tile, overlap, multiple)
    wys, wxs = _axis_weights(ys, h, overlap), _axis_weights(xs, w, overlap)
    log.debug("tiling %dx%d into %d x %d tiles (tile %d, overlap %d)", w, h, len(xs), len(ys), tile, overlap)
    # band[:, :, :y1 - y0] holds output rows [y0, y1) of the current tile row. Span starts and
    # ends both increase, so rows above the next tile row's start are final once this tile
    # row is added, and the rest (the overlap) is carried to the top of the band.
    band: torch.Tensor | None = None
    for i, ((y0, y1), wy) in enumerate(zip(ys, wys, strict=True)):
        if band is not None:
            prev0, prev1 = ys[i - 1]
            carried = prev1 - y0
            # clone: source and target rows overlap when the carry is longer than the step.
            band[:, :, :carried] = band[:, :, y0 - prev0 : prev1 - prev0].clone()
            band[:, :, carried : y1 - y0].zero_()
        for (x0, x1), wx in zip(xs, wxs, strict=True):
            # _tile's temporaries are gone before the next tile's model run starts.
            core = _tile(fn, x, (y0, y1, x0, x1), context, multiple, min_side, low_guide, factor)
            if band is None:
                band = torch.zeros((n, core.shape[1], max(e - s for s, e in ys), w), dtype=torch.float32)
            band[:, :, : y1 - y0, x0:x1].addcmul_(core, wy[:, None] * wx[None, :])
            del core
        assert band is not None  # tile_spans always yields at least one span
        done = ys[i + 1][0] if i + 1 < len(ys) else h
        yield y0, done, band[:, :, : done - y0]


def _tile(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    box: tuple[int, int, int, int],
    context: int,
    multiple: int,
    min_side: int,
    low_guide: torch.Tensor | None,
    factor: int,
) -> torch.Tensor:
    """``fn``'s float32 output for the output pixels ``box`` (y0, y1, x0, x1) of ``x``, run with
    ``context`` pixels of real picture around them and the guide's broad tones if given."""
    n, _, h, w = x.shape
    y0, y1, x0, x1 = box
    iy0, iy1 = max(0, y0 - context), min(h, y1 + context)
    ix0, ix1 = max(0, x0 - context), min(w, x1 + context)
    padded, pads = pad_to_multiple(_as_float(x[:, :, iy0:iy1, ix0:ix1]), multiple, min_side=min_side)
    result = unpad(fn(padded), pads)
    if result.shape[-2:] != (iy1 - iy0, ix1 - ix0) or result.shape[0] != n:
        raise StylekitError(
            f"The model returned {tuple(result.shape)} for a tile of {tuple(padded.shape)}; "
            "outputs must keep the input's batch and size."
        )
    del padded
    result = result.float()
    if low_guide is not None:
        # Swap the tile's broad tones for the guide's: tile - lowpass(tile) + lowpass(guide).
        result = result.sub(_low_pass(result, factor))
        result.add_(_sample(low_guide, (iy0, iy1, ix0, ix1), (h, w)))
    return result[:, :, y0 - iy0 : y1 - iy0, x0 - ix0 : x1 - ix0]


def _blur(t: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of [N, C, H, W] with mirrored edges."""
    import torch
    import torch.nn.functional as F

    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(taps**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = t.shape[1]
    padded = _reflect_pad(t, (radius, radius, radius, radius))
    out = F.conv2d(padded, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(out, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def _low_pass(t: torch.Tensor, factor: int) -> torch.Tensor:
    """What a tile looks like at the guide's resolution after the guide's blur, at full size."""
    import torch.nn.functional as F

    small = F.avg_pool2d(t, factor, ceil_mode=True) if factor > 1 else t
    return F.interpolate(_blur(small, GUIDE_SIGMA), size=t.shape[-2:], mode="bilinear", align_corners=False)


def _sample(low: torch.Tensor, box: tuple[int, int, int, int], full: tuple[int, int]) -> torch.Tensor:
    """Bilinear samples of the (blurred) guide at the full-resolution pixels of ``box``."""
    import torch
    import torch.nn.functional as F

    y0, y1, x0, x1 = box
    h, w = full
    # Pixel centres in grid_sample's normalised coordinates (align_corners=False).
    ys = (torch.arange(y0, y1, dtype=torch.float32) + 0.5) / h * 2 - 1
    xs = (torch.arange(x0, x1, dtype=torch.float32) + 0.5) / w * 2 - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).unsqueeze(0)
    grid = grid.expand(low.shape[0], -1, -1, -1)
    return F.grid_sample(low, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _as_float(t: torch.Tensor) -> torch.Tensor:
    import torch

    if t.dtype == torch.uint8:
        return t.to(torch.float32).div_(255.0).contiguous()
    return t.contiguous()


# --------------------------------------------------------------------------- colour


def preserve_color(content_rgb: np.ndarray, stylized_rgb: np.ndarray) -> np.ndarray:
    """Keep the photo's colours: chroma (Cb, Cr) from the photo, luminance (Y) from the style."""
    _same_shape(content_rgb, stylized_rgb, "preserve_color")
    _, cb, cr = Image.fromarray(content_rgb, "RGB").convert("YCbCr").split()
    y = Image.fromarray(stylized_rgb, "RGB").convert("L")
    return np.asarray(Image.merge("YCbCr", (y, cb, cr)).convert("RGB"))


def blend(content_rgb: np.ndarray, stylized_rgb: np.ndarray, strength: float) -> np.ndarray:
    """Fade from the photo (strength 0) to the stylized image (strength 1)."""
    _same_shape(content_rgb, stylized_rgb, "blend")
    strength = wire.check_number("strength", strength, 0.0, 1.0)
    if strength == 1.0:
        return stylized_rgb
    if strength == 0.0:
        return content_rgb
    mixed = Image.blend(Image.fromarray(content_rgb, "RGB"), Image.fromarray(stylized_rgb, "RGB"), strength)
    return np.asarray(mixed)


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape or a.dtype != np.uint8 or b.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise BadOptionError(
            f"{what} needs two HxWx3 uint8 arrays of one size, "
            f"not {a.dtype} {a.shape} and {b.dtype} {b.shape}."
        )


# --------------------------------------------------------------------------- stroke size (scale=)

# guided_upsample's local linear fit: a (2r+1)^2 window of network pixels, and how much photo
# contrast a window needs before the style is taken to follow the photo there (eps is a
# variance in [0, 1]^2 units: 0.02^2, about 5 grey levels).
GUIDED_RADIUS = 1
GUIDED_EPS = 4e-4
# The fitted gain is bounded so noise in a nearly flat window cannot amplify photo detail.
GUIDED_MAX_GAIN = 2.0
_LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 on sRGB values, as Pillow's "L"


def work_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """The size the network paints at for ``scale``: the photo's size divided by it (>= 1 px)."""
    scale = wire.check_number("scale", scale, wire.MIN_SCALE, wire.MAX_SCALE)
    w, h = size
    return max(1, round(w / scale)), max(1, round(h / scale))


def check_work_size(size: tuple[int, int], scale: float, limits: ImageLimits | None = None) -> None:
    """Refuse a ``scale`` below 1 that would make the network's working image larger than the
    image limits allow (the same limits a decoded photo is held to)."""
    lim = limits if limits is not None else ImageLimits.from_env()
    _check_dimensions(size, f"at scale={scale:g} the network's working image", lim)


def check_scale_side(longest: int, scale: float, limit: int, what: str) -> None:
    """A server's bound on ``scale`` below 1: the network may not paint ``what`` (whose longest
    side is ``longest`` px) at more than ``limit`` px on its longest side. The one sentence says
    the smallest stroke size that fits. (The engine's own bound is :func:`check_work_size`.)"""
    if scale >= 1.0:
        return
    work = round(longest / scale)
    if work > limit:
        least = math.ceil(100 * longest / limit) / 100
        raise BadOptionError(
            f"scale={scale:g} would paint {what} ({longest} px) at {work} px, over this server's "
            f"{limit} px; choose a stroke size of at least {least:g} or a smaller longest side."
        )


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """An HxWx3 uint8 array resized to ``size`` (width, height) with the pipeline's filter."""
    if (rgb.shape[1], rgb.shape[0]) == size:
        return rgb
    return np.asarray(_resize(Image.fromarray(rgb, "RGB"), size))


def guided_upsample(styled: np.ndarray, small_photo: np.ndarray, photo: np.ndarray) -> np.ndarray:
    """Bring a result painted at a reduced size back to the photo's size, keeping its edges sharp.

    ``styled`` is what the network made of ``small_photo`` (the photo resized to the working
    size); ``photo`` is the full-resolution guide. A plain resize of ``styled`` would blur the
    photo's edges along with the strokes. Instead, like the guided filter (He et al.), the
    output is taken to be locally linear in the photo's luminance: in each small window of the
    working image a least-squares fit gives, per channel, how strongly the style follows the
    photo there (the gain ``a``). The result is the smoothly upsampled ``styled`` plus ``a``
    times the photo detail that the reduction removed (full-resolution luminance minus the
    upsampled reduced luminance). Where the style follows the photo's edges, those edges come
    back at full resolution; where it does not (flat areas, the strokes themselves), ``a`` is
    near 0 and the strokes are kept as painted. Works in bands of rows: memory beyond the
    output is a few working-size channels and one band.
    """
    import torch
    import torch.nn.functional as F

    (h, w), (big_h, big_w) = styled.shape[:2], photo.shape[:2]
    if small_photo.shape != styled.shape:
        raise BadOptionError(
            f"guided_upsample: styled {styled.shape} and small_photo {small_photo.shape} differ."
        )
    r = GUIDED_RADIUS

    def box(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(F.pad(t[None], (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)[0]

    p = torch.from_numpy(_c_order(styled)).permute(2, 0, 1).float().div_(255.0)  # [3, h, w]
    y = _luma(small_photo)  # [1, h, w]
    mean_y, mean_p = box(y), box(p)
    var_y = box(y * y) - mean_y * mean_y
    gain = (box(y * p) - mean_y * mean_p) / (var_y.clamp_min(0.0) + GUIDED_EPS)
    gain = box(gain.clamp_(-GUIDED_MAX_GAIN, GUIDED_MAX_GAIN))
    del mean_p, var_y
    rows, cols = _linear_taps(big_h, h), _linear_taps(big_w, w)
    out = np.empty((big_h, big_w, 3), dtype=np.uint8)
    band = max(1, 2**20 // max(1, big_w))
    for r0 in range(0, big_h, band):
        span = slice(r0, min(big_h, r0 + band))
        detail = _luma(photo[span]) - _upsample_rows(y, rows, cols, span)
        q = _upsample_rows(p, rows, cols, span).add_(_upsample_rows(gain, rows, cols, span).mul_(detail))
        _store_uint8(q, out[span], scratch=True)
    return out


def _c_order(arr: np.ndarray) -> np.ndarray:
    return arr if arr.flags.c_contiguous and arr.flags.writeable else np.array(arr, order="C")


def _luma(rgb: np.ndarray) -> torch.Tensor:
    """HxWx3 uint8 -> [1, H, W] float32 luminance in [0, 1]."""
    import torch

    t = torch.from_numpy(_c_order(rgb)).float()
    weights = torch.tensor(_LUMA, dtype=torch.float32) / 255.0
    return (t @ weights).unsqueeze(0)


_Taps = tuple["torch.Tensor", "torch.Tensor", "torch.Tensor"]


def _linear_taps(n_out: int, n_in: int) -> _Taps:
    """Source indices and weights of linear interpolation from ``n_in`` to ``n_out`` samples
    (pixel centres aligned, edges clamped: what ``interpolate(..., align_corners=False)`` does)."""
    import torch

    pos = ((torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5).clamp_(0, n_in - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp_(max=n_in - 1)
    return lo, hi, (pos - lo).float()


def _upsample_rows(low: torch.Tensor, rows: _Taps, cols: _Taps, span: slice) -> torch.Tensor:
    """Rows ``span`` of ``low`` [C, h, w] linearly upsampled to the full size: [C, band, W]."""
    lo, hi, t = (v[span] for v in rows)
    t = t.view(1, -1, 1)
    v = low.index_select(1, lo).mul_(1 - t).add_(low.index_select(1, hi).mul_(t))
    c_lo, c_hi, c_t = cols
    return v.index_select(2, c_lo).mul_(1 - c_t).add_(v.index_select(2, c_hi).mul_(c_t))


# --------------------------------------------------------------------------- regions (mask=)

# A mask may differ from the photo's aspect ratio by this much (rounding when it was resized).
MASK_ASPECT_TOLERANCE = 0.02


def read_mask(src: ImageInput, limits: ImageLimits | None = None) -> np.ndarray:
    """Decode a mask: any image :func:`decode` reads, any mode -> HxW ``uint8`` at its own size.

    A mask's value is its luminance times its alpha: white takes the style, black or
    transparent keeps the photo, grey blends. An HxW ``uint8`` array is taken as it is (a
    mask already read). Unreadable or empty input raises :class:`InvalidMaskError`.
    """
    if isinstance(src, np.ndarray) and src.ndim == 2 and src.dtype == np.uint8 and src.size:
        return src
    try:
        decoded = decode(src, limits, label="the mask")
    except ImageTooLargeError:
        raise
    except InvalidImageError as exc:
        # The same sentence, as the mask's own error (a path's message names the file).
        raise InvalidMaskError(exc.message if "mask" in exc.message else f"The mask: {exc.message}") from None
    value = np.asarray(Image.fromarray(decoded.rgb, "RGB").convert("L"))
    if decoded.alpha is not None:
        value = ((value.astype(np.uint16) * decoded.alpha + 127) // 255).astype(np.uint8)
    return value


def fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask from :func:`read_mask` brought to ``size`` (width, height), softly (area average
    when shrinking, linear when enlarging); its aspect ratio must match within
    :data:`MASK_ASPECT_TOLERANCE` (or one pixel, for tiny images)."""
    h, w = mask.shape
    width, height = size
    expected = w * height / width  # the mask's height if it had the photo's aspect ratio
    if abs(h - expected) > max(1.0, MASK_ASPECT_TOLERANCE * expected):
        raise InvalidMaskError(
            f"The mask is {w}x{h} but the photo is {width}x{height}: a mask needs the photo's aspect "
            f"ratio (within {MASK_ASPECT_TOLERANCE:.0%}); it is resized to the photo."
        )
    if (w, h) == size:
        return mask
    return np.asarray(Image.fromarray(mask, "L").resize(size, Image.Resampling.BILINEAR))


def apply_mask(inside: np.ndarray, outside: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``inside`` where ``mask`` is 255, ``outside`` where it is 0, exactly; a blend between.

    Integer arithmetic in bands of rows: no full-size float buffer, and the ends are exact.
    """
    _same_shape(inside, outside, "apply_mask")
    if mask.shape != inside.shape[:2] or mask.dtype != np.uint8:
        raise BadOptionError(
            f"apply_mask needs an HxW uint8 mask of {inside.shape[:2]}, not {mask.dtype} {mask.shape}."
        )
    out = np.empty_like(inside)
    band = max(1, 2**20 // max(1, inside.shape[1]))
    for r0 in range(0, inside.shape[0], band):
        m = mask[r0 : r0 + band, :, None].astype(np.uint16)
        mixed = inside[r0 : r0 + band] * m + outside[r0 : r0 + band] * (255 - m) + 127
        out[r0 : r0 + band] = mixed // 255
    return out


# --------------------------------------------------------------------------- output


def finish(rgb: np.ndarray, decoded: DecodedImage, size: tuple[int, int] | None = None) -> Image.Image:
    """Turn model output into the final image: resized to ``size`` if given, alpha put back."""
    img = Image.fromarray(rgb, "RGB")
    if size is not None and size != img.size:
        img = _resize(img, size)
    if decoded.alpha is not None:
        alpha = Image.fromarray(decoded.alpha, "L")
        if alpha.size != img.size:
            alpha = _resize(alpha, img.size)
        img.putalpha(alpha)
    return img


def encode(img: Image.Image, format: str = "PNG", quality: int = 92) -> bytes:
    """Encode as PNG, JPEG or WEBP, marked as sRGB; no EXIF or other metadata is written.

    The pixels are taken to be sRGB (what :func:`decode` and :func:`finish` give) and the file
    says so: PNG with its 13-byte ``sRGB`` chunk, JPEG and WebP with a compact sRGB ICC profile
    (about 600 bytes; not on greyscale JPEGs, which an RGB profile does not fit). JPEG has no
    alpha channel: transparent areas are composited on white (:data:`JPEG_BACKGROUND`). PNG and
    WebP keep the alpha.
    """
    fmt = normalise_format(format)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise BadOptionError(f"quality must be an integer from 1 to 100, not {quality!r}.")
    if fmt == "JPEG":
        img = _flatten_for_jpeg(img)
    elif img.mode not in ("RGB", "RGBA", "L", "LA"):
        img = img.convert("RGBA" if img.has_transparency_data else "RGB")
    buf = io.BytesIO()
    if fmt == "PNG":
        srgb = PngImagePlugin.PngInfo()
        srgb.add(b"sRGB", b"\x00")  # rendering intent: perceptual
        # Level 3 is about twice as fast as Pillow's default 6 for a few percent more bytes.
        # icc_profile=None: a profile the image carries must not contradict the sRGB chunk.
        img.save(buf, "PNG", compress_level=3, icc_profile=None, pnginfo=srgb)
    elif fmt == "JPEG":
        icc = _srgb_icc() if img.mode == "RGB" else None
        img.save(buf, "JPEG", quality=quality, optimize=False, icc_profile=icc)
    else:
        img.save(buf, "WEBP", quality=quality, icc_profile=_srgb_icc())
    return buf.getvalue()


@functools.cache
def _srgb_icc() -> bytes:
    """The sRGB ICC profile that :func:`encode` embeds: Little CMS's built-in sRGB (v4, 588 bytes).

    Little CMS stamps the time of creation into the header; a fixed date (and no profile ID,
    which would depend on it) keeps every encode of an image byte-identical.
    """
    data = bytearray(_srgb_profile().tobytes())
    data[24:36] = struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
    data[84:100] = bytes(16)
    return bytes(data)


def _flatten_for_jpeg(img: Image.Image) -> Image.Image:
    if img.mode in ("RGB", "L"):
        return img
    if img.mode in ("RGBA", "LA", "PA", "RGBa") or img.has_transparency_data:
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, JPEG_BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return img.convert("RGB")


__all__ = [
    "DECODE_FORMATS",
    "GUIDED_EPS",
    "GUIDED_MAX_GAIN",
    "GUIDED_RADIUS",
    "GUIDE_SIGMA",
    "JPEG_BACKGROUND",
    "MASK_ASPECT_TOLERANCE",
    "MIME",
    "MIN_MODEL_SIDE",
    "DecodedImage",
    "ImageInput",
    "ImageLimits",
    "apply_mask",
    "blend",
    "check_scale_side",
    "check_work_size",
    "decode",
    "encode",
    "finish",
    "fit_mask",
    "format_from_name",
    "guided_upsample",
    "mime_type",
    "needs_tiling",
    "pad_to_multiple",
    "preserve_color",
    "read_mask",
    "resize_max_side",
    "resize_rgb",
    "run_tiled",
    "run_tiled_uint8",
    "tile_spans",
    "to_tensor",
    "to_uint8",
    "unpad",
    "work_size",
]
