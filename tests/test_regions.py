"""Stroke size and regions: ``scale=``, ``mask=`` and ``outside=`` in the SDK, the engine and the CLI.

The claims, each tested against the real built-in networks:
- ``scale=1`` is today's output, bit for bit;
- a larger ``scale`` paints larger strokes: the peak of the output's power spectrum (relative
  to the photo's, :func:`training.evaluate.stroke_frequency`) moves to lower frequencies, about
  as ``1/scale``;
- the photo's edges stay: the edge SSIM of the guided upsampling beats a plain resize of the
  same painting by at least :data:`EDGE_MARGIN`;
- a mask keeps the photo's pixels exactly where it is black and the style's where it is white,
  or a second style's (``outside=``) where it is black.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_fixture.stylekit_fixture_plugin import models

import sdk
from sdk import imaging
from sdk.engine import Engine
from sdk.errors import BadOptionError, ImageTooLargeError, InvalidMaskError, UnknownStyleError
from sdk.imaging import ImageLimits
from sdk.registry import default_registry
from sdk.wire import StyleRequest, parse_options
from training.evaluate import edge_ssim, stroke_frequency

# Measured: the guided upsampling beat a plain bicubic resize by 0.05 to 0.14 edge SSIM (three
# styles, three photos, scales 2 and 4); the test asks for at least this much everywhere.
EDGE_MARGIN = 0.03


def photo_of(path: Path, width: int) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    return np.asarray(im.resize((width, round(width * im.height / im.width)), Image.Resampling.LANCZOS))


@pytest.fixture(scope="module")
def content(content_images: list[Path]) -> dict[str, Path]:
    return {p.stem: p for p in content_images}


@pytest.fixture(scope="module")
def stata(content: dict[str, Path]) -> np.ndarray:
    return photo_of(content["stata"], 384)


def rgb(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


def half_mask(size: tuple[int, int], mode: str = "L") -> Image.Image:
    """Black on the left half, white on the right: ``size`` is (width, height)."""
    w, h = size
    m = np.zeros((h, w), np.uint8)
    m[:, w // 2 :] = 255
    return Image.fromarray(m, "L").convert(mode)


# --------------------------------------------------------------------------- scale=


def test_scale_one_is_todays_output(stata: np.ndarray) -> None:
    for style in ("starry-night", "fiery-brushstrokes"):
        assert np.array_equal(rgb(sdk.stylize(stata, style, scale=1.0)), rgb(sdk.stylize(stata, style)))


@pytest.mark.parametrize("name", ["chicago", "stata"])
def test_larger_scale_paints_larger_strokes(content: dict[str, Path], name: str) -> None:
    photo = photo_of(content[name], 768)
    freq = {s: stroke_frequency(rgb(sdk.stylize(photo, "starry-night", scale=s)), photo) for s in (1, 2, 4)}
    # Measured 0.33, 0.16, 0.08 cycles/pixel: the stroke period doubles with the scale.
    assert freq[1] > freq[2] > freq[4], freq
    for low, high in ((1, 2), (2, 4)):
        assert 1.6 <= freq[low] / freq[high] <= 2.5, freq
    brush = {
        s: stroke_frequency(rgb(sdk.stylize(photo, "fiery-brushstrokes", scale=s)), photo) for s in (1, 4)
    }
    assert brush[4] < brush[1], brush


def test_smaller_scale_paints_smaller_strokes(stata: np.ndarray) -> None:
    plain = rgb(sdk.stylize(stata, "fiery-brushstrokes"))
    fine = rgb(sdk.stylize(stata, "fiery-brushstrokes", scale=0.5))
    assert fine.shape == plain.shape and not np.array_equal(fine, plain)
    coarse = rgb(sdk.stylize(stata, "fiery-brushstrokes", scale=4))
    assert stroke_frequency(fine, stata) >= stroke_frequency(coarse, stata)


@pytest.mark.parametrize("scale", [2.0, 4.0])
def test_guided_upsampling_keeps_edges_better_than_a_resize(content: dict[str, Path], scale: float) -> None:
    photo = photo_of(content["golden_gate"], 768)
    size = imaging.work_size((photo.shape[1], photo.shape[0]), scale)
    small = imaging.resize_rgb(photo, size)
    for style in ("starry-night", "fiery-brushstrokes", "navy-dots"):
        painted = rgb(sdk.stylize(small, style))
        guided = rgb(sdk.stylize(photo, style, scale=scale))
        # The public call is exactly: paint the reduced photo, then guide it back up.
        assert np.array_equal(guided, imaging.guided_upsample(painted, small, photo))
        plain = np.asarray(Image.fromarray(painted).resize(photo.shape[1::-1], Image.Resampling.BICUBIC))
        assert edge_ssim(photo, guided) >= edge_ssim(photo, plain) + EDGE_MARGIN, style


def test_scale_keeps_size_alpha_and_works_on_tiny_images() -> None:
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., :3] = 120
    rgba[..., 3] = np.linspace(0, 255, 60, dtype=np.uint8)[None, :]
    out = sdk.stylize(rgba, "starry-night", scale=3)
    assert out.size == (60, 40) and out.mode == "RGBA"
    assert np.array_equal(np.asarray(out)[..., 3], rgba[..., 3])
    for w, h in ((1, 1), (1, 300), (300, 1), (3, 2)):
        for scale in (0.25, 8.0):
            assert sdk.stylize(Image.new("RGB", (w, h), (200, 30, 30)), "starry-night", scale=scale).size == (
                w,
                h,
            )


def test_scale_below_one_is_held_to_the_image_limits() -> None:
    eng = Engine(device="cpu", limits=ImageLimits(max_pixels=100_000))
    style = default_registry().resolve("starry-night")
    photo = np.full((200, 300, 3), 90, np.uint8)  # 60,000 pixels: inside the limit
    assert eng.run(photo, style, StyleRequest(scale=1.0)).size == (300, 200)
    with pytest.raises(ImageTooLargeError, match=r"scale=0\.5"):
        eng.run(photo, style, StyleRequest(scale=0.5))  # would paint 240,000 pixels


def test_scale_below_one_runs_the_larger_working_image_in_tiles(stata: np.ndarray) -> None:
    # A small pixel budget: the working image (twice the photo's sides) is painted in tiles.
    eng = Engine(device="cpu", pixel_budget=200 * 200, tile=256, overlap=32)
    style = default_registry().resolve("starry-night")
    h, w = stata.shape[:2]
    big = imaging.resize_rgb(stata, (2 * w, 2 * h))
    assert imaging.needs_tiling(2 * w, 2 * h, eng.pixel_budget)
    tiled = rgb(eng.run(big, style, StyleRequest()))
    out = rgb(eng.run(stata, style, StyleRequest(scale=0.5)))
    assert np.array_equal(out, imaging.resize_rgb(tiled, (w, h)))


@pytest.mark.parametrize("bad", [0, 0.2, 8.5, float("nan"), float("inf"), 1e309, -2, True, "2"])
def test_bad_scales_are_refused_before_any_work(bad: object) -> None:
    with pytest.raises(BadOptionError, match="scale"):
        sdk.stylize(b"not even an image", "starry-night", scale=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", ["nan", "inf", "1e309", "0", "-1", "+2", "9", "٢", "2,5", " "])
def test_scale_as_text_is_parsed_strictly(text: str) -> None:
    assert parse_options({"scale": ""}).scale == 1.0  # an empty field: the default
    assert parse_options({"scale": " 0.25 "}).scale == 0.25
    with pytest.raises(BadOptionError, match="scale"):
        parse_options({"scale": text})


def test_scale_and_outside_round_trip_on_the_wire() -> None:
    request = StyleRequest(style="starry-night", scale=2.5, mask=b"m", outside={"ink-and-yellow": 1.0})
    fields = request.to_fields()
    assert fields["scale"] == "2.5" and fields["outside"] == '{"ink-and-yellow": 1.0}'
    assert parse_options(fields, mask=b"m") == request
    assert "scale" not in StyleRequest(style="starry-night").to_fields()
    with pytest.raises(BadOptionError, match="give a mask"):
        parse_options({"outside": "ink-and-yellow"})


# --------------------------------------------------------------------------- mask=


def test_mask_black_keeps_the_photo_and_white_the_style_exactly(stata: np.ndarray) -> None:
    h, w = stata.shape[:2]
    styled = rgb(sdk.stylize(stata, "starry-night"))
    # A quarter-size mask: resized to the photo, soft only across the one boundary.
    out = rgb(sdk.stylize(stata, "starry-night", mask=half_mask((w // 4, h // 4))))
    left, right = slice(0, w // 2 - 4), slice(w // 2 + 4, w)
    assert np.array_equal(out[:, left], stata[:, left])
    assert np.array_equal(out[:, right], styled[:, right])
    # The boundary blends: every pixel lies between the photo's and the style's.
    seam = slice(w // 2 - 4, w // 2 + 4)
    low = np.minimum(stata[:, seam], styled[:, seam]).astype(int)
    high = np.maximum(stata[:, seam], styled[:, seam]).astype(int)
    assert np.all(out[:, seam] >= low - 1) and np.all(out[:, seam] <= high + 1)


def test_grey_blends_softly() -> None:
    photo = np.full((64, 64, 3), 200, np.uint8)
    gradient = np.tile(np.linspace(0, 255, 64).round().astype(np.uint8), (64, 1))
    out = rgb(sdk.stylize(photo, "starry-night", mask=gradient))
    styled = rgb(sdk.stylize(photo, "starry-night"))
    # Distance to the photo grows with the mask, column by column.
    share = np.abs(out.astype(int) - photo).mean(axis=(0, 2)) / np.abs(styled.astype(int) - photo).mean(
        axis=(0, 2)
    )
    assert share[0] == 0 and share[-1] == pytest.approx(1.0)
    assert np.all(np.diff(np.convolve(share, np.ones(8) / 8, "valid")) > -0.05)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"])
def test_mask_in_any_mode(stata: np.ndarray, mode: str) -> None:
    h, w = stata.shape[:2]
    mask = half_mask((w, h), "RGB" if mode == "CMYK" else "L").convert(mode)
    buf = io.BytesIO()
    mask.save(buf, "TIFF" if mode in ("CMYK", "I;16") else "PNG")
    out = rgb(sdk.stylize(stata, "starry-night", mask=buf.getvalue()))
    assert np.array_equal(out[:, : w // 2], stata[:, : w // 2])
    assert not np.array_equal(out[:, w // 2 :], stata[:, w // 2 :])


def test_transparent_mask_pixels_keep_the_photo(stata: np.ndarray) -> None:
    h, w = stata.shape[:2]
    painted = np.zeros((h, w, 4), np.uint8)  # a brush layer: white where painted, clear elsewhere
    painted[: h // 2, :] = 255
    out = rgb(sdk.stylize(stata, "starry-night", mask=Image.fromarray(painted, "RGBA")))
    assert np.array_equal(out[h // 2 :], stata[h // 2 :])
    assert np.array_equal(out[: h // 2], rgb(sdk.stylize(stata, "starry-night"))[: h // 2])


def test_two_styles_by_mask(stata: np.ndarray) -> None:
    h, w = stata.shape[:2]
    inside = rgb(sdk.stylize(stata, "starry-night"))
    outside = rgb(sdk.stylize(stata, "ink-and-yellow"))
    out = rgb(sdk.stylize(stata, {"starry-night": 1.0}, mask=half_mask((w, h)), outside="ink-and-yellow"))
    assert np.array_equal(out[:, : w // 2 - 1], outside[:, : w // 2 - 1])
    assert np.array_equal(out[:, w // 2 + 1 :], inside[:, w // 2 + 1 :])
    # Options apply to both styles: at strength 0 both are the photo.
    faded = rgb(
        sdk.stylize(stata, "starry-night", mask=half_mask((w, h)), outside="ink-and-yellow", strength=0)
    )
    assert np.array_equal(faded, stata)


def test_mask_with_scale_strength_max_side_and_alpha(stata: np.ndarray) -> None:
    h, w = stata.shape[:2]
    rgba = np.dstack([stata, np.full((h, w), 180, np.uint8)])
    out = sdk.stylize(rgba, "starry-night", mask=half_mask((w, h)), scale=2, strength=0.7, max_side=w // 2)
    small = imaging.resize_max_side(imaging.decode(rgba), w // 2)
    assert out.size == small.size and out.mode == "RGBA"
    got = np.asarray(out)
    assert np.array_equal(got[:, : w // 4 - 2, :3], small.rgb[:, : w // 4 - 2])
    assert np.array_equal(got[..., 3], small.alpha)


def test_mask_in_tiles_is_exact(stata: np.ndarray) -> None:
    eng = Engine(device="cpu", pixel_budget=128 * 128, tile=128, overlap=16)
    style = default_registry().resolve("starry-night")
    h, w = stata.shape[:2]
    out = rgb(eng.run(stata, style, StyleRequest(mask=half_mask((w, h)))))
    assert np.array_equal(out[:, : w // 2 - 1], stata[:, : w // 2 - 1])


def test_one_mask_for_a_batch_of_sizes(tmp_path: Path) -> None:
    pkg = models.write_negative(tmp_path)
    eng = Engine(device="cpu")
    style = pkg.resolve(None)
    photos = [np.full((h, 2 * h, 3), 40, np.uint8) for h in (10, 30, 31)]
    outs = eng.run_batch(photos, style, StyleRequest(mask=half_mask((200, 100))))
    for photo, out in zip(photos, outs, strict=True):
        got, w = rgb(out), photo.shape[1]
        assert np.all(got[:, : w // 2 - 1] == 40) and np.all(got[:, w // 2 + 1 :] == 215)


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (b"", "empty"),
        (b"GIF89a-not-really", "mask"),
        (b"just some text", "mask"),
        ("/definitely/not/here.png", "mask"),
    ],
)
def test_unreadable_masks_get_one_clear_error(stata: np.ndarray, mask: object, match: str) -> None:
    with pytest.raises(InvalidMaskError, match=match) as info:
        sdk.stylize(stata, "starry-night", mask=mask)  # type: ignore[arg-type]
    assert info.value.http_status == 400 and info.value.code == "invalid_mask"
    assert "\n" not in info.value.message


@pytest.mark.parametrize("size", [(100, 10), (10, 100), (385, 200)])
def test_mask_of_another_shape_is_refused(stata: np.ndarray, size: tuple[int, int]) -> None:
    with pytest.raises(InvalidMaskError, match="aspect ratio"):
        sdk.stylize(stata, "starry-night", mask=Image.new("L", size, 255))


def test_mask_aspect_tolerance_allows_rounding() -> None:
    photo = np.full((333, 500, 3), 60, np.uint8)
    for size in ((100, 67), (100, 66), (1000, 666), (3, 2)):
        sdk.stylize(photo, "starry-night", mask=Image.new("L", size, 0))
    one_px = np.full((1, 1, 3), 7, np.uint8)
    assert rgb(sdk.stylize(one_px, "starry-night", mask=Image.new("L", (1, 1), 0)))[0, 0].tolist() == [
        7,
        7,
        7,
    ]
    strip = np.full((300, 1, 3), 7, np.uint8)
    assert rgb(sdk.stylize(strip, "starry-night", mask=Image.new("L", (1, 300), 0))).shape == (300, 1, 3)


def test_huge_mask_is_refused_from_its_header(stata: np.ndarray) -> None:
    eng = Engine(device="cpu", limits=ImageLimits(max_pixels=1_000_000))
    buf = io.BytesIO()
    Image.new("L", (3000, 2000), 255).save(buf, "PNG")
    with pytest.raises(ImageTooLargeError, match="mask"):
        eng.run(stata, default_registry().resolve("starry-night"), StyleRequest(mask=buf.getvalue()))


def test_outside_needs_a_mask_and_a_known_style(stata: np.ndarray) -> None:
    with pytest.raises(BadOptionError, match="give a mask"):
        sdk.stylize(stata, "starry-night", outside="ink-and-yellow")
    with pytest.raises(UnknownStyleError):
        sdk.stylize(stata, "starry-night", mask=half_mask((10, 10)), outside="no-such-style")
    eng = Engine(device="cpu")
    with pytest.raises(BadOptionError, match="resolve it"):
        eng.run(stata, default_registry().resolve("starry-night"),
                StyleRequest(mask=b"m", outside="ink-and-yellow"))  # fmt: skip


# --------------------------------------------------------------------------- the CLI


def test_cli_scale_mask_and_outside(tmp_path: Path, stata: np.ndarray) -> None:
    from sdk.cli import main

    h, w = stata.shape[:2]
    Image.fromarray(stata).save(tmp_path / "photo.png")
    half_mask((w // 2, h // 2)).save(tmp_path / "mask.png")
    out = tmp_path / "out.png"
    args = ["stylize", tmp_path / "photo.png", "-s", "starry-night", "-o", out]
    assert main([str(a) for a in [*args, "--scale", "2", "--mask", tmp_path / "mask.png",
                                  "--outside", "ink-and-yellow"]]) == 0  # fmt: skip
    expected = sdk.stylize(
        stata, "starry-night", scale=2, mask=half_mask((w // 2, h // 2)), outside="ink-and-yellow"
    )
    assert np.array_equal(rgb(Image.open(out)), rgb(expected))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--scale", "nan"], "--scale must be a number from 0.25 to 8"),
        (["--scale", "1e309"], "--scale must be a number"),
        (["--outside", "ink-and-yellow"], "give --mask too"),
        (["--mask", "missing.png"], "Mask missing.png: no such file."),
        (["--mask", "empty.png"], "The mask is empty (0 bytes), not an image."),
        (["--mask", "wide.png"], "aspect ratio"),
    ],
)
def test_cli_bad_region_options_are_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    extra: list[str], message: str,
) -> None:  # fmt: skip
    from sdk.cli import main

    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (60, 40), (10, 200, 30)).save("photo.png")
    Path("empty.png").write_bytes(b"")
    Image.new("L", (100, 10)).save("wide.png")
    rc = main(["stylize", "photo.png", "-s", "starry-night", "-o", "out.png", *extra])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert rc == 2 and len(err) == 1 and message in err[0] and err[0].startswith("stylekit: error:"), err
    assert not Path("out.png").exists()


def test_a_servers_bound_on_small_scales_names_the_least_that_fits() -> None:
    imaging.check_scale_side(1000, 1.0, 500, "this photo")  # 1 and above: never refused here
    imaging.check_scale_side(1000, 0.5, 2000, "this photo")  # exactly the limit
    with pytest.raises(BadOptionError) as info:
        imaging.check_scale_side(1000, 0.25, 2048, "this photo")
    assert info.value.message == (
        "scale=0.25 would paint this photo (1000 px) at 4000 px, over this server's 2048 px; "
        "choose a stroke size of at least 0.49 or a smaller longest side."
    )
    imaging.check_scale_side(1000, 0.49, 2048, "this photo")  # the least it named fits
