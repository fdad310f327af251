"""sdk.imaging: every input kind, every odd mode, every error, padding, colour, tiling, encoding.

Odd-mode files are made at test time in tmp_path from the real photos in ../shared/data.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile_corpus import bomb_png
from PIL import Image

from sdk import imaging
from sdk.errors import BadOptionError, ImageTooLargeError, InvalidImageError, StylekitError
from sdk.imaging import DecodedImage, ImageLimits


@pytest.fixture(scope="module")
def photo_path(photos: list[Path]) -> Path:
    return photos[0]


@pytest.fixture(scope="module")
def photo_rgb(photo_path: Path) -> np.ndarray:
    with Image.open(photo_path) as im:
        return np.array(im.convert("RGB"))


def _png_bytes(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _mean_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --------------------------------------------------------------------------- input kinds


def test_every_input_kind_gives_the_same_pixels(photo_path: Path, photo_rgb: np.ndarray) -> None:
    data = photo_path.read_bytes()
    with open(photo_path, "rb") as fh:
        from_handle = imaging.decode(fh)
    with Image.open(photo_path) as im:
        from_pil = imaging.decode(im)
    inputs = {
        "str": imaging.decode(str(photo_path)),
        "path": imaging.decode(photo_path),
        "bytes": imaging.decode(data),
        "bytearray": imaging.decode(bytearray(data)),
        "bytesio": imaging.decode(io.BytesIO(data)),
        "file": from_handle,
        "pil": from_pil,
        "array": imaging.decode(photo_rgb),
    }
    for kind, dec in inputs.items():
        assert dec.rgb.dtype == np.uint8 and dec.rgb.shape == photo_rgb.shape, kind
        assert np.array_equal(dec.rgb, photo_rgb), kind
        assert dec.alpha is None, kind
        assert dec.size == (photo_rgb.shape[1], photo_rgb.shape[0]), kind
        assert dec.rgb.flags.writeable, kind
    assert inputs["path"].format == "JPEG" and inputs["path"].source_mode == "RGB"
    assert inputs["array"].format is None


def test_arrays_grey_single_channel_and_rgba(photo_rgb: np.ndarray) -> None:
    grey = photo_rgb[..., 0].copy()
    for arr in (grey, grey[..., None]):
        dec = imaging.decode(arr)
        assert dec.source_mode == "L" and dec.alpha is None
        assert np.array_equal(dec.rgb, np.stack([grey] * 3, axis=2))
    alpha = np.tile(np.arange(photo_rgb.shape[1], dtype=np.uint8), (photo_rgb.shape[0], 1))
    dec = imaging.decode(np.dstack([photo_rgb, alpha]))
    assert dec.source_mode == "RGBA" and dec.alpha is not None
    assert np.array_equal(dec.rgb, photo_rgb) and np.array_equal(dec.alpha, alpha)


@pytest.mark.parametrize(
    ("array", "needle"),
    [
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8, 2), np.uint8), "shape"),
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        (np.zeros((0, 8, 3), np.uint8), "no pixels"),
    ],
)
def test_bad_arrays(array: np.ndarray, needle: str) -> None:
    with pytest.raises(InvalidImageError, match=needle):
        imaging.decode(array)


def test_unsupported_input_type() -> None:
    with pytest.raises(InvalidImageError, match="int"):
        imaging.decode(42)  # type: ignore[arg-type]


def test_text_mode_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    with open(p) as fh, pytest.raises(InvalidImageError, match="text mode"):
        imaging.decode(fh)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- odd modes


def test_cmyk_jpeg(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(photo_rgb).convert("CMYK").save(p, "JPEG", quality=95)
    dec = imaging.decode(p)
    assert dec.source_mode == "CMYK" and dec.format == "JPEG" and dec.alpha is None
    assert dec.rgb.shape == photo_rgb.shape
    assert _mean_abs(dec.rgb, photo_rgb) < 4.0


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    grey8 = np.array(Image.fromarray(photo_rgb).convert("L"))
    p = tmp_path / "grey16.png"
    Image.fromarray(grey8.astype(np.uint16) * 257).save(p)  # full 16-bit range
    dec = imaging.decode(p)
    assert dec.source_mode == "I;16"
    assert np.array_equal(dec.rgb[..., 0], grey8)  # x*257 scales back to x exactly
    assert np.array_equal(dec.rgb[..., 0], dec.rgb[..., 2])


def test_int32_and_float_modes(photo_rgb: np.ndarray) -> None:
    grey8 = photo_rgb[..., 1]
    dec = imaging.decode(Image.fromarray(grey8.astype(np.int32) * 257))
    assert dec.source_mode == "I" and np.array_equal(dec.rgb[..., 0], grey8)
    dec = imaging.decode(Image.fromarray(grey8.astype(np.float32) / 255.0))
    assert dec.source_mode == "F" and np.abs(dec.rgb[..., 0].astype(int) - grey8).max() <= 1


def test_palette_with_and_without_transparency(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    pal = Image.fromarray(photo_rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    plain = tmp_path / "palette.png"
    pal.save(plain)
    dec = imaging.decode(plain)
    assert dec.source_mode == "P" and dec.alpha is None
    assert _mean_abs(dec.rgb, photo_rgb) < 8.0

    index = np.array(pal)
    clear = int(index[0, 0])
    transparent = tmp_path / "palette_t.png"
    pal.save(transparent, transparency=clear)
    dec = imaging.decode(transparent)
    assert dec.source_mode == "P" and dec.alpha is not None
    assert np.array_equal(dec.alpha == 0, index == clear)


def test_la_rgba_bilevel_and_ycbcr(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    h, w = photo_rgb.shape[:2]
    ramp = np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))
    grey = Image.fromarray(photo_rgb).convert("L")
    la = Image.merge("LA", (grey, Image.fromarray(ramp)))
    dec = imaging.decode(_png_bytes(la))
    assert dec.source_mode == "LA" and dec.alpha is not None
    assert np.array_equal(dec.alpha, ramp) and np.array_equal(dec.rgb[..., 0], np.array(grey))

    rgba = Image.fromarray(np.dstack([photo_rgb, ramp]))
    dec = imaging.decode(_png_bytes(rgba))
    assert dec.source_mode == "RGBA" and dec.alpha is not None
    assert np.array_equal(dec.alpha, ramp) and np.array_equal(dec.rgb, photo_rgb)

    dec = imaging.decode(_png_bytes(grey.convert("1")))
    assert dec.source_mode == "1" and set(np.unique(dec.rgb)) <= {0, 255}

    dec = imaging.decode(Image.fromarray(photo_rgb).convert("YCbCr"))
    assert dec.source_mode == "YCbCr" and _mean_abs(dec.rgb, photo_rgb) < 2.0


def test_exif_rotated_jpeg_comes_out_upright(tmp_path: Path, photo_rgb: np.ndarray) -> None:
    wide = photo_rgb[:128]  # 256 wide, 128 high
    stored = np.rot90(wide, k=1)  # what a camera held sideways stores: 128 wide, 256 high
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    p = tmp_path / "rotated.jpg"
    Image.fromarray(np.ascontiguousarray(stored)).save(p, "JPEG", quality=95, exif=exif)
    dec = imaging.decode(p)
    assert dec.size == (256, 128) and dec.rgb.shape == (128, 256, 3)
    assert _mean_abs(dec.rgb, wide) < 4.0
    # A PIL image handed in is transposed too, without being modified.
    with Image.open(p) as im:
        dec = imaging.decode(im)
        assert im.size == (128, 256)
    assert dec.size == (256, 128)


def test_animated_gif_gives_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (32, 24), c) for c in ((200, 30, 30), (30, 200, 30))]
    p = tmp_path / "anim.gif"
    frames[0].save(p, save_all=True, append_images=frames[1:], duration=100, loop=0)
    dec = imaging.decode(p)
    assert dec.size == (32, 24) and dec.format == "GIF"
    assert dec.rgb[..., 0].mean() > 150 and dec.rgb[..., 1].mean() < 80


# --------------------------------------------------------------------------- errors


def test_decompressionbomb_png(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_png(19_000, 19_000))  # 361 M pixels, over twice Pillow's guard
    assert p.stat().st_size < 2_000_000
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png"):
        imaging.decode(p)
    # Under Pillow's guard but over a configured limit: refused from the header alone.
    small = bomb_png(4000, 3000)
    with pytest.raises(ImageTooLargeError, match="12,000,000 pixels"):
        imaging.decode(small, ImageLimits(max_pixels=10_000_000))
    with pytest.raises(ImageTooLargeError, match="longest side"):
        imaging.decode(small, ImageLimits(max_side=3999))


def test_limits_on_pixels_side_and_bytes(photo_path: Path, photo_rgb: np.ndarray) -> None:
    with pytest.raises(ImageTooLargeError, match=photo_path.name):
        imaging.decode(photo_path, ImageLimits(max_pixels=256 * 255))
    with pytest.raises(ImageTooLargeError, match="longest side"):
        imaging.decode(photo_rgb, ImageLimits(max_side=255))
    tight = ImageLimits(max_bytes=1000)
    data = photo_path.read_bytes()
    for src in (photo_path, data, io.BytesIO(data)):
        with pytest.raises(ImageTooLargeError, match=r"over the limit of 0\.0 MB"):
            imaging.decode(src, tight)
    assert imaging.decode(photo_path, ImageLimits(max_pixels=256 * 256, max_side=256)).size == (256, 256)


def test_limits_from_environment() -> None:
    lim = ImageLimits.from_env({"STYLEKIT_MAX_PIXELS": "1_000", "STYLEKIT_MAX_SIDE": ""})
    assert lim == ImageLimits(max_pixels=1000)
    with pytest.raises(BadOptionError, match="STYLEKIT_MAX_BYTES"):
        ImageLimits.from_env({"STYLEKIT_MAX_BYTES": "lots"})
    with pytest.raises(BadOptionError, match="max_side"):
        ImageLimits(max_side=0)


def test_corrupt_truncated_empty_text_pdf_missing(tmp_path: Path, photo_path: Path) -> None:
    data = photo_path.read_bytes()
    cases: dict[str, tuple[bytes, str]] = {
        "corrupt.jpg": (data[:200] + bytes(range(256)) * 40, "corrupt or truncated"),
        "truncated.jpg": (data[: len(data) // 2], "truncated"),
        "empty.png": (b"", "empty"),
        "notes.txt": (b"just some words\n" * 10, "text, not an image"),
        "paper.pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
    }
    for name, (content, needle) in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(InvalidImageError, match=needle) as err:
            imaging.decode(p)
        assert name in str(err.value) and not isinstance(err.value, ImageTooLargeError)
        assert str(err.value).count(". ") == 0  # one sentence
        if content:
            with pytest.raises(InvalidImageError, match=needle):
                imaging.decode(content)
    with pytest.raises(InvalidImageError, match="does not exist"):
        imaging.decode(tmp_path / "missing.jpg")
    with pytest.raises(InvalidImageError, match="folder"):
        imaging.decode(tmp_path)
    named = io.BytesIO(data[: len(data) // 2])
    named.name = "upload.jpg"
    with pytest.raises(InvalidImageError, match=r"upload\.jpg"):
        imaging.decode(named)


# --------------------------------------------------------------------------- tensors and padding


def test_to_tensor_and_back_is_exact(photo_rgb: np.ndarray) -> None:
    t = imaging.to_tensor(photo_rgb)
    assert t.shape == (1, 3, 256, 256) and t.dtype == torch.float32
    assert float(t.min()) >= 0.0 and float(t.max()) <= 1.0
    assert np.array_equal(imaging.to_uint8(t), photo_rgb)
    stretched = imaging.to_uint8(t[0] * 2 - 0.5)  # clamped, rounded
    assert np.abs(stretched - np.clip(photo_rgb * 2.0 - 127.5, 0, 255).round()).max() <= 1


@pytest.mark.parametrize(
    ("h", "w", "multiple", "extra"), [(37, 50, 8, 0), (37, 50, 8, 5), (1, 1, 4, 0), (2, 3, 4, 9)]
)
def test_pad_unpad_round_trip(h: int, w: int, multiple: int, extra: int) -> None:
    x = torch.rand(1, 3, h, w)
    padded, pads = imaging.pad_to_multiple(x, multiple, extra)
    assert padded.shape[-2] % multiple == 0 and padded.shape[-1] % multiple == 0
    left, right, top, bottom = pads
    assert left == top == extra and right >= extra and bottom >= extra
    assert torch.equal(imaging.unpad(padded, pads), x)
    if h > 1 and w > 2:  # mirrored without repeating the edge
        assert torch.equal(padded[..., top, left - 1], x[..., 0, 1]) if left else True
        assert torch.equal(padded[..., top + h, left], x[..., h - 2, 0])


def test_resize_max_side_never_upscales() -> None:
    rgb = np.zeros((300, 600, 3), np.uint8)
    alpha = np.full((300, 600), 7, np.uint8)
    dec = DecodedImage(rgb, alpha, "RGBA", None, (600, 300))
    small = imaging.resize_max_side(dec, 200)
    assert small.size == (200, 100) and small.rgb.shape == (100, 200, 3)
    assert small.alpha is not None and small.alpha.shape == (100, 200) and int(small.alpha.mean()) == 7
    assert imaging.resize_max_side(dec, 1000) is dec and imaging.resize_max_side(dec, None) is dec
    with pytest.raises(BadOptionError):
        imaging.resize_max_side(dec, 0)


# --------------------------------------------------------------------------- colour


def test_preserve_color_keeps_chroma(photos: list[Path]) -> None:
    content = imaging.decode(photos[1]).rgb
    # A "stylized" image with very different colours: other photo, channels reversed, saturated.
    other = imaging.decode(photos[2]).rgb[..., ::-1].astype(np.int16)
    stylized = np.clip((other - other.mean(axis=2, keepdims=True)) * 3 + 128, 0, 255).astype(np.uint8)
    out = imaging.preserve_color(content, stylized)
    ycc = {
        k: np.array(Image.fromarray(v).convert("YCbCr"))
        for k, v in {"out": out, "content": content, "stylized": stylized}.items()
    }
    assert _mean_abs(ycc["out"][..., 1:], ycc["content"][..., 1:]) < 3.0
    assert _mean_abs(ycc["out"][..., 0], ycc["stylized"][..., 0]) < 3.0
    assert _mean_abs(ycc["out"][..., 1:], ycc["stylized"][..., 1:]) > 5.0


def test_blend_strength(photos: list[Path]) -> None:
    a = imaging.decode(photos[1]).rgb
    b = imaging.decode(photos[2]).rgb
    assert np.array_equal(imaging.blend(a, b, 0.0), a)
    assert np.array_equal(imaging.blend(a, b, 1.0), b)
    half = imaging.blend(a, b, 0.5).astype(int)
    assert np.abs(half - (a.astype(int) + b) / 2).max() <= 1
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(BadOptionError, match="strength"):
            imaging.blend(a, b, bad)  # type: ignore[arg-type]
    with pytest.raises(BadOptionError):
        imaging.blend(a, b[:10], 0.5)


# --------------------------------------------------------------------------- output


def test_finish_reattaches_alpha_and_resizes(photo_rgb: np.ndarray) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    dec = imaging.decode(np.dstack([photo_rgb, ramp]))
    out = imaging.finish(photo_rgb, dec)
    assert out.mode == "RGBA" and np.array_equal(np.array(out)[..., 3], ramp)
    out = imaging.finish(photo_rgb, dec, size=(128, 64))
    assert out.size == (128, 64) and out.mode == "RGBA"
    assert imaging.finish(photo_rgb, imaging.decode(photo_rgb)).mode == "RGB"


def test_encode_formats_and_no_exif(photo_rgb: np.ndarray) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    rgba = Image.fromarray(np.dstack([photo_rgb, ramp]))
    rgba.info["exif"] = b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"
    for fmt in ("PNG", "png", "WEBP", "JPEG", "jpg"):
        data = imaging.encode(rgba, fmt)
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == imaging.format_from_name(fmt) and im.size == (256, 256)
            assert not im.getexif() and "exif" not in im.info
            if im.format == "JPEG":
                px = np.array(im.convert("RGB"))
                assert px[:, :4].min() > 235  # alpha ~0 at the left edge: composited on white
            else:
                assert np.array(im.convert("RGBA"))[..., 3][0, 0] < 3
    png = imaging.encode(rgba, "PNG")
    assert np.array_equal(np.array(Image.open(io.BytesIO(png))), np.array(rgba))
    with pytest.raises(BadOptionError, match="GIF"):
        imaging.encode(rgba, "GIF")
    with pytest.raises(BadOptionError, match="quality"):
        imaging.encode(rgba, "JPEG", quality=0)


def test_format_from_name_and_mime() -> None:
    assert imaging.format_from_name("out/x.JPG") == "JPEG"
    assert imaging.format_from_name("x.jpeg") == "JPEG"
    assert imaging.format_from_name("x.webp") == "WEBP"
    assert imaging.format_from_name("png") == "PNG"
    assert imaging.MIME[imaging.format_from_name("a.png")] == "image/png"
    assert imaging.mime_type("jpg") == "image/jpeg"
    with pytest.raises(BadOptionError, match=r"x\.tiff"):
        imaging.format_from_name("x.tiff")


# --------------------------------------------------------------------------- tiling


@pytest.mark.parametrize(
    ("length", "tile", "overlap", "multiple"), [(700, 128, 16, 4), (17, 8, 2, 4), (6000, 1024, 64, 4)]
)
def test_tile_spans_cover_with_overlap(length: int, tile: int, overlap: int, multiple: int) -> None:
    spans = imaging.tile_spans(length, tile, overlap, multiple)
    assert spans[0][0] == 0 and spans[-1][1] == length
    for (s0, e0), (s1, _) in itertools.pairwise(spans):
        assert s1 % multiple == 0 and s0 < s1 and e0 - s1 >= overlap
    assert all(e - s <= tile + multiple for s, e in spans)
    assert imaging.tile_spans(100, 128, 16, 4) == [(0, 100)]


def test_run_tiled_identity_is_exact() -> None:
    x = torch.rand(1, 3, 131, 203)
    y = imaging.run_tiled(lambda t: t, x, tile=48, overlap=12, multiple=4)
    assert torch.allclose(y, x, atol=1e-6)
    u8 = (x * 255).round().to(torch.uint8)
    y = imaging.run_tiled(lambda t: t, u8, tile=48, overlap=12, multiple=4)
    assert torch.allclose(y * 255, u8.float(), atol=1e-3)


def test_run_tiled_matches_whole_image_for_a_conv_net() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 5, padding=2, padding_mode="reflect"),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, padding_mode="reflect"),
        torch.nn.ReLU(),
        torch.nn.Upsample(scale_factor=2.0),
        torch.nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect"),
        torch.nn.Sigmoid(),
    ).eval()
    x = torch.rand(1, 3, 150, 210)
    with torch.inference_mode():
        padded, pads = imaging.pad_to_multiple(x, 4)
        whole = imaging.unpad(net(padded), pads)
        tiled = imaging.run_tiled(net, x, tile=64, overlap=16, multiple=4)
    assert tiled.shape == whole.shape
    assert float((tiled - whole).abs().max()) < 1e-5


def test_run_tiled_rejects_bad_settings_and_bad_models() -> None:
    x = torch.rand(1, 3, 40, 40)
    with pytest.raises(BadOptionError):
        imaging.run_tiled(lambda t: t, x, tile=16, overlap=14, multiple=4)
    with pytest.raises(Exception, match="keep the input"):
        imaging.run_tiled(lambda t: t[..., :-1], x, tile=16, overlap=4, multiple=4)
    assert imaging.needs_tiling(2049, 2048, 2048 * 2048) and not imaging.needs_tiling(2048, 2048, 2048 * 2048)


def test_run_tiled_guide_restores_broad_tones() -> None:
    """A model whose output depends on its input's mean (like instance norm) shifts every tile
    differently; a low-resolution whole-image run as the guide puts the broad tones back."""

    def fn(t: torch.Tensor) -> torch.Tensor:
        return t - t.mean(dim=(2, 3), keepdim=True) + 0.5

    torch.manual_seed(0)
    coarse = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8), size=(240, 320), mode="bicubic")
    x = (coarse + 0.05 * torch.rand(1, 3, 240, 320)).clamp(0, 1)
    whole = fn(x)
    guide = fn(torch.nn.functional.interpolate(x, size=(60, 80), mode="area"))
    plain = imaging.run_tiled(fn, x, tile=64, overlap=16, multiple=4)
    guided = imaging.run_tiled(fn, x, tile=64, overlap=16, multiple=4, guide=guide)
    err_plain = float((plain - whole).abs().mean())
    err_guided = float((guided - whole).abs().mean())
    assert err_plain > 0.05
    assert err_guided < 0.3 * err_plain
    with pytest.raises(BadOptionError, match="guide"):
        imaging.run_tiled(fn, x, tile=64, overlap=16, multiple=4, guide=guide[0])


def _reference_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    *,
    tile: int,
    overlap: int,
    multiple: int,
    guide: torch.Tensor | None = None,
    min_side: int = 0,
) -> torch.Tensor:
    """The blend written out plainly, as run_tiled first did it: every tile is added into one
    full-size float tensor. The row-band version must give the same pixels."""
    n, _, h, w = x.shape
    low = None if guide is None else imaging._blur(guide.float(), imaging.GUIDE_SIGMA)
    factor = 1 if guide is None else max(1, round(max(h / guide.shape[-2], w / guide.shape[-1])))
    context = -(-overlap // multiple) * multiple
    ys, xs = imaging.tile_spans(h, tile, overlap, multiple), imaging.tile_spans(w, tile, overlap, multiple)
    wys, wxs = imaging._axis_weights(ys, h, overlap), imaging._axis_weights(xs, w, overlap)
    out: torch.Tensor | None = None
    for (y0, y1), wy in zip(ys, wys, strict=True):
        iy0, iy1 = max(0, y0 - context), min(h, y1 + context)
        for (x0, x1), wx in zip(xs, wxs, strict=True):
            ix0, ix1 = max(0, x0 - context), min(w, x1 + context)
            piece = x[:, :, iy0:iy1, ix0:ix1]
            piece = piece.float() / 255.0 if piece.dtype == torch.uint8 else piece
            padded, pads = imaging.pad_to_multiple(piece, multiple, min_side=min_side)
            result = imaging.unpad(fn(padded), pads).float()
            if low is not None:
                result = result - imaging._low_pass(result, factor)
                result = result + imaging._sample(low, (iy0, iy1, ix0, ix1), (h, w))
            core = result[:, :, y0 - iy0 : y1 - iy0, x0 - ix0 : x1 - ix0]
            if out is None:
                out = torch.zeros((n, core.shape[1], h, w))
            out[:, :, y0:y1, x0:x1].addcmul_(core, wy[:, None] * wx[None, :])
    assert out is not None
    return out


def _per_tile_model(t: torch.Tensor) -> torch.Tensor:
    """Depends on the whole tile (like instance norm), so every tile's output differs."""
    return torch.sigmoid(4 * (t - t.mean(dim=(2, 3), keepdim=True))) * 0.9 + 0.05 * t.std()


# (h, w, tile, overlap): odd sizes; 61x45 in 16-pixel tiles overlapping by 12 has three tiles
# over some rows and columns (the band carries more rows than it finishes); 1-pixel-wide and
# 1-pixel-tall images (one span across, padded up to min_side).
TILINGS = [(131, 203, 48, 12), (61, 45, 16, 12), (97, 33, 32, 8), (1, 150, 48, 12), (150, 1, 48, 12)]


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), TILINGS)
@pytest.mark.parametrize("guided", [False, True])
def test_run_tiled_matches_the_full_size_blend(h: int, w: int, tile: int, overlap: int, guided: bool) -> None:
    torch.manual_seed(h * w)
    u8 = (torch.rand(1, 3, h, w) * 255).round().to(torch.uint8)
    small = torch.nn.functional.interpolate(
        u8.float() / 255, size=(max(1, h // 3), max(1, w // 3)), mode="area"
    )
    guide = _per_tile_model(small) if guided else None
    kwargs = {"tile": tile, "overlap": overlap, "multiple": 4, "guide": guide, "min_side": 32}
    with torch.inference_mode():
        reference = _reference_tiled(_per_tile_model, u8, **kwargs)  # type: ignore[arg-type]
        tiled = imaging.run_tiled(_per_tile_model, u8, **kwargs)  # type: ignore[arg-type]
        rgb = imaging.run_tiled_uint8(_per_tile_model, u8, **kwargs)  # type: ignore[arg-type]
    assert tiled.shape == reference.shape == (1, 3, h, w)
    assert float((tiled - reference).abs().max()) <= 1e-6
    assert rgb.shape == (h, w, 3) and rgb.dtype == np.uint8
    # Rounded as to_uint8 rounds: the same pixels as the float result, and within one level of
    # the full-size blend (float sums can differ in the last bit on other CPUs).
    assert np.array_equal(rgb, imaging.to_uint8(tiled))
    assert int(np.abs(rgb.astype(int) - imaging.to_uint8(reference).astype(int)).max()) <= 1


def test_tilings_under_test_have_triple_overlaps() -> None:
    spans = imaging.tile_spans(61, 16, 12, 4)
    assert any(spans[i + 2][0] < spans[i][1] for i in range(len(spans) - 2))


@pytest.mark.parametrize(("h", "w", "tile", "overlap"), TILINGS)
def test_run_tiled_uint8_of_identity_gives_the_input_back(h: int, w: int, tile: int, overlap: int) -> None:
    """The weights sum to 1 on every pixel: a lost, doubled or misplaced row band shows here."""
    u8 = (torch.rand(1, 3, h, w) * 255).round().to(torch.uint8)
    rgb = imaging.run_tiled_uint8(lambda t: t, u8, tile=tile, overlap=overlap, multiple=4, min_side=32)
    assert np.array_equal(rgb, u8[0].permute(1, 2, 0).numpy())
    batch = torch.rand(2, 3, h, w)  # run_tiled keeps batches
    same = imaging.run_tiled(lambda t: t, batch, tile=tile, overlap=overlap, multiple=4)
    assert torch.allclose(same, batch, atol=1e-6)


def test_run_tiled_uint8_rejects_batches_and_non_rgb_models() -> None:
    x = torch.rand(2, 3, 40, 40)
    with pytest.raises(BadOptionError, match="one image"):
        imaging.run_tiled_uint8(lambda t: t, x, tile=16, overlap=4, multiple=4)
    with pytest.raises(StylekitError, match="3"):
        imaging.run_tiled_uint8(lambda t: t[:, :1], x[:1], tile=16, overlap=4, multiple=4)
