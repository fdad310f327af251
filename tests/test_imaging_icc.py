"""sdk.imaging and ICC profiles: embedded profiles are applied on the way in, outputs say sRGB.

The profiles are written here, tag by tag (ICC.1:2001-04, version 2 matrix/TRC display
profiles), and the expected pixels come from a plain NumPy computation of what such a profile
means (decode the tone curve, 3x3 matrix to the D50 connection space, sRGB's inverse matrix,
sRGB's tone curve), independent of Little CMS, which the pipeline uses.
"""

from __future__ import annotations

import datetime
import io
import logging
import struct
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image, ImageCms

from sdk import imaging

Curve = Callable[[np.ndarray], np.ndarray]
D65 = (0.3127, 0.3290)
D50_XYZ = np.array([0.9642, 1.0, 0.8249])  # the ICC connection space's white
# The Bradford cone response matrix, for adapting D65 primaries to the D50 connection space.
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_PRIMARIES = ((0.64, 0.33), (0.30, 0.60), (0.15, 0.06))
ADOBE_RGB_PRIMARIES = ((0.64, 0.33), (0.21, 0.71), (0.15, 0.06))
DISPLAY_P3_PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))
ADOBE_GAMMA = 563 / 256  # Adobe RGB's 2.2, as the u8Fixed8Number a 'curv' tag can hold


# --------------------------------------------------------------------------- colour maths


def _xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def rgb_to_xyz_d50(primaries: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Linear RGB -> XYZ in the D50 connection space, for primaries with a D65 white."""
    p = np.stack([_xyz(*c) for c in primaries], axis=1)
    white = _xyz(*D65)
    m = p * np.linalg.solve(p, white)  # scale the primaries so that RGB 1,1,1 is the white
    adapt = np.linalg.inv(BRADFORD) @ np.diag((BRADFORD @ D50_XYZ) / (BRADFORD @ white)) @ BRADFORD
    return np.asarray(adapt @ m)


def s15f16(values: np.ndarray) -> np.ndarray:
    """What survives of a number written as an ICC s15Fixed16Number."""
    return np.asarray(np.round(np.asarray(values) * 65536) / 65536)


def srgb_decode(v: np.ndarray) -> np.ndarray:
    return np.asarray(np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4))


def srgb_encode(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.asarray(np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055))


def expected_srgb(raw: np.ndarray, matrix: np.ndarray, linearize: Curve) -> np.ndarray:
    """raw HxWx3 uint8 in a matrix/TRC profile -> HxWx3 uint8 sRGB (colorimetric, clipped)."""
    lin = linearize(raw / 255.0)
    xyz = lin @ s15f16(matrix).T
    srgb_lin = xyz @ np.linalg.inv(rgb_to_xyz_d50(SRGB_PRIMARIES)).T
    return np.asarray(np.rint(srgb_encode(srgb_lin) * 255), dtype=np.uint8)


# --------------------------------------------------------------------------- writing profiles


def _s15f16_bytes(values: np.ndarray | list[float]) -> bytes:
    return b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def xyz_tag(xyz: np.ndarray | list[float]) -> bytes:
    return b"XYZ " + bytes(4) + _s15f16_bytes(xyz)


def gamma_curve(gamma: float) -> bytes:
    """'curv' with one entry: a pure power law, the exponent as u8Fixed8Number."""
    return b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256))


def table_curve(linearize: Curve, n: int = 1024) -> bytes:
    """'curv' with a sampled tone curve (what v2 profiles use for sRGB's and P3's curve)."""
    samples = linearize(np.linspace(0.0, 1.0, n))
    values = np.rint(np.clip(samples, 0, 1) * 65535).astype(">u2")
    return b"curv" + bytes(4) + struct.pack(">I", n) + bytes(values.data)


def desc_tag(text: str) -> bytes:
    """v2 'desc' (textDescriptionType): ASCII part, empty Unicode and ScriptCode parts."""
    ascii_z = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_z)) + ascii_z + bytes(8) + bytes(3) + bytes(67)


def icc_profile(colour_space: bytes, tags: dict[bytes, bytes]) -> bytes:
    """A display ('mntr') profile: 128-byte header, tag table, tag data (4-byte aligned)."""
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags.items():
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = struct.pack(
        ">I4sI4s4s4s12s4s4sI4s4sQI",
        offset + len(data),  # profile size
        b"none",  # preferred CMM
        0x02100000,  # version 2.1
        b"mntr",  # display device profile
        colour_space,
        b"XYZ ",  # connection space
        bytes(12),  # creation date (not needed here)
        b"acsp",  # the file signature
        b"none",  # platform
        0,  # flags
        b"none",  # device manufacturer
        b"none",  # device model
        0,  # device attributes
        0,  # rendering intent: perceptual
    )
    header += _s15f16_bytes(D50_XYZ) + b"none"
    return header + bytes(128 - len(header)) + table + data


def rgb_profile(name: str, primaries: tuple[tuple[float, float], ...], curve: bytes) -> bytes:
    m = rgb_to_xyz_d50(primaries)
    return icc_profile(
        b"RGB ",
        {
            b"desc": desc_tag(name),
            b"wtpt": xyz_tag(D50_XYZ),
            b"rXYZ": xyz_tag(m[:, 0]),
            b"gXYZ": xyz_tag(m[:, 1]),
            b"bXYZ": xyz_tag(m[:, 2]),
            b"rTRC": curve,
            b"gTRC": curve,
            b"bTRC": curve,
        },
    )


def linear_grey_profile() -> bytes:
    return icc_profile(
        b"GRAY", {b"desc": desc_tag("Linear grey"), b"wtpt": xyz_tag(D50_XYZ), b"kTRC": gamma_curve(1.0)}
    )


def adobe_linearize(v: np.ndarray) -> np.ndarray:
    return np.asarray(v, dtype=np.float64) ** (round(ADOBE_GAMMA * 256) / 256)


ADOBE_RGB = rgb_profile("Test Adobe RGB", ADOBE_RGB_PRIMARIES, gamma_curve(ADOBE_GAMMA))
DISPLAY_P3 = rgb_profile("Test Display P3", DISPLAY_P3_PRIMARIES, table_curve(srgb_decode))
PROFILES = {
    "adobe-rgb": (ADOBE_RGB, rgb_to_xyz_d50(ADOBE_RGB_PRIMARIES), adobe_linearize),
    "display-p3": (DISPLAY_P3, rgb_to_xyz_d50(DISPLAY_P3_PRIMARIES), srgb_decode),
}


# --------------------------------------------------------------------------- test images


@pytest.fixture(scope="module")
def saturated() -> np.ndarray:
    """Random colours, and a band of strong primaries and secondaries where gamuts differ most."""
    rng = np.random.default_rng(7)
    img = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    strong = [(230, 20, 20), (20, 200, 40), (30, 40, 220), (220, 200, 20), (20, 190, 200), (200, 30, 190)]
    for i, colour in enumerate(strong):
        img[:8, i * 10 : i * 10 + 10] = colour
    return img


def _save(im: Image.Image, fmt: str, icc: bytes | None, **options: object) -> bytes:
    buf = io.BytesIO()
    if icc is not None:
        options["icc_profile"] = icc
    im.save(buf, fmt, **options)
    return buf.getvalue()


def _raw_rgb(data: bytes) -> np.ndarray:
    """The file's pixel values as Pillow decodes them, with no colour management."""
    with Image.open(io.BytesIO(data)) as im:
        return np.array(im.convert("RGB"))


def _max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max())


def _mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("profile", sorted(PROFILES))
@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_wide_gamut_rgb_is_converted_to_srgb(saturated: np.ndarray, profile: str, fmt: str) -> None:
    icc, matrix, linearize = PROFILES[profile]
    data = _save(Image.fromarray(saturated), fmt, icc, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    raw = _raw_rgb(data)  # lossy formats: the reference starts from what is in the file
    expected = expected_srgb(raw, matrix, linearize)

    decoded = imaging.decode(data)

    assert decoded.format == fmt and decoded.source_mode == "RGB"
    assert _max_diff(decoded.rgb, expected) <= 2
    # ... and clearly not the raw values: taken as sRGB, a wide-gamut file's colours come out
    # duller than the file means them (most of all the strong ones in the top band).
    assert _mean_diff(decoded.rgb, raw) > 3
    assert _max_diff(decoded.rgb[:8], raw[:8]) > 40


def test_every_input_kind_applies_the_profile(saturated: np.ndarray) -> None:
    data = _save(Image.fromarray(saturated), "PNG", ADOBE_RGB)
    expected = imaging.decode(data).rgb
    with Image.open(io.BytesIO(data)) as im:
        from_pil = imaging.decode(im)
    assert np.array_equal(from_pil.rgb, expected)
    assert np.array_equal(imaging.decode(io.BytesIO(data)).rgb, expected)


def test_rgba_keeps_its_alpha(saturated: np.ndarray) -> None:
    alpha = np.tile(np.linspace(0, 255, saturated.shape[1]).astype(np.uint8), (saturated.shape[0], 1))
    data = _save(Image.fromarray(np.dstack([saturated, alpha]), "RGBA"), "PNG", ADOBE_RGB)

    decoded = imaging.decode(data)

    assert decoded.source_mode == "RGBA"
    assert decoded.alpha is not None and np.array_equal(decoded.alpha, alpha)
    assert _max_diff(decoded.rgb, expected_srgb(saturated, PROFILES["adobe-rgb"][1], adobe_linearize)) <= 2
    assert np.array_equal(np.asarray(imaging.finish(decoded.rgb, decoded).getchannel("A")), alpha)


def test_palette_image_with_a_profile(saturated: np.ndarray) -> None:
    palette = Image.fromarray(saturated).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    data = _save(palette, "PNG", DISPLAY_P3)
    decoded = imaging.decode(data)
    assert decoded.source_mode == "P"
    assert _max_diff(decoded.rgb, expected_srgb(_raw_rgb(data), PROFILES["display-p3"][1], srgb_decode)) <= 2


def test_exif_rotated_photo_with_a_profile(saturated: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    data = _save(Image.fromarray(saturated), "JPEG", ADOBE_RGB, quality=95, exif=exif.tobytes())
    upright = np.rot90(_raw_rgb(data), k=-1)

    decoded = imaging.decode(data)

    assert decoded.size == (saturated.shape[0], saturated.shape[1])
    assert _max_diff(decoded.rgb, expected_srgb(upright, PROFILES["adobe-rgb"][1], adobe_linearize)) <= 2


@pytest.mark.parametrize("mode", ["L", "LA", "I;16"])
def test_grey_profiles_apply_to_grey_images(mode: str) -> None:
    ramp = np.tile(np.arange(256, dtype=np.uint8), (4, 1))
    if mode == "L":
        im = Image.fromarray(ramp)
    elif mode == "LA":
        im = Image.merge("LA", (Image.fromarray(ramp), Image.fromarray(255 - ramp)))
    else:  # 16-bit grey: decode scales it to 8 bits first, then applies the profile
        im = Image.fromarray(ramp.astype(np.uint16) * 257)
        assert im.mode == "I;16"
    # A linear grey profile: value v means luminance v/255, which sRGB writes as srgb_encode(v/255).
    expected = np.rint(srgb_encode(ramp / 255.0) * 255).astype(np.uint8)

    decoded = imaging.decode(_save(im, "PNG", linear_grey_profile()))

    assert decoded.source_mode == mode
    for channel in range(3):
        assert _max_diff(decoded.rgb[..., channel], expected) <= 2
    assert _mean_diff(decoded.rgb[..., 0], ramp) > 20  # much lighter than the raw values
    if mode == "LA":
        assert decoded.alpha is not None and np.array_equal(decoded.alpha, 255 - ramp)


def test_srgb_profiles_leave_the_pixels_alone(saturated: np.ndarray) -> None:
    # Two different sRGB profiles: Little CMS's own (v4, parametric curve) and a v2 one with a
    # sampled curve, as many cameras embed. Neither costs a transform per image.
    lcms_srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    sampled_srgb = rgb_profile("sRGB IEC61966-2.1 (test)", SRGB_PRIMARIES, table_curve(srgb_decode))
    for icc in (lcms_srgb, sampled_srgb):
        decoded = imaging.decode(_save(Image.fromarray(saturated), "PNG", icc))
        assert np.array_equal(decoded.rgb, saturated)
        assert imaging._srgb_converter(icc, "RGB") is None  # recognised as sRGB: nothing to apply


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"this is not an ICC profile, just some bytes " * 4, id="garbage"),
        pytest.param(ADOBE_RGB[:150], id="truncated"),
        pytest.param(linear_grey_profile(), id="grey-profile-on-colour"),
        pytest.param(ADOBE_RGB[:128] + struct.pack(">I", 0), id="no-tags"),
    ],
)
def test_unusable_profiles_are_ignored(
    saturated: np.ndarray, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    imaging._srgb_converter.cache_clear()  # it logs once per profile: make this the first time
    with caplog.at_level(logging.DEBUG, logger="sdk.imaging"):
        decoded = imaging.decode(_save(Image.fromarray(saturated), "PNG", bad))
    assert np.array_equal(decoded.rgb, saturated)
    assert any("unusable ICC profile" in r.getMessage() for r in caplog.records)


def test_cmyk_with_a_colour_profile_is_still_read(saturated: np.ndarray) -> None:
    # An RGB profile in a CMYK file does not fit its pixels: Pillow's plain conversion is used.
    cmyk = Image.fromarray(saturated).convert("CMYK")
    decoded = imaging.decode(_save(cmyk, "JPEG", ADOBE_RGB, quality=95))
    assert decoded.source_mode == "CMYK"
    with Image.open(io.BytesIO(_save(cmyk, "JPEG", None, quality=95))) as plain:
        assert np.array_equal(decoded.rgb, np.array(plain.convert("RGB")))


# --------------------------------------------------------------------------- encoding


def test_png_output_carries_the_srgb_chunk(saturated: np.ndarray) -> None:
    data = imaging.encode(Image.fromarray(saturated), "PNG")
    assert data[8:].find(b"sRGB") < data.find(b"IDAT")  # before the pixel data, as PNG requires
    with Image.open(io.BytesIO(data)) as im:
        assert im.info.get("srgb") == 0 and "icc_profile" not in im.info


def test_png_output_drops_a_profile_the_image_carries(saturated: np.ndarray) -> None:
    im = Image.fromarray(saturated)
    im.info["icc_profile"] = ADOBE_RGB
    with Image.open(io.BytesIO(imaging.encode(im, "PNG"))) as out:
        assert "icc_profile" not in out.info and out.info.get("srgb") == 0


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_outputs_carry_an_srgb_profile(saturated: np.ndarray, fmt: str) -> None:
    data = imaging.encode(Image.fromarray(saturated), fmt)
    with Image.open(io.BytesIO(data)) as im:
        icc = im.info["icc_profile"]
        raw = np.array(im.convert("RGB"))
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc)).profile
    assert profile.xcolor_space.strip() == "RGB" and "sRGB" in (profile.profile_description or "")
    assert len(icc) < 1024
    # Little CMS stamps the current time into a profile; the embedded one has a fixed date, so
    # encoding the same image gives the same bytes in every process.
    assert profile.creation_date == datetime.datetime(2026, 1, 1)
    assert imaging.encode(Image.fromarray(saturated), fmt) == data
    # Reading our own output back is a no-op: the profile is recognised as sRGB.
    assert np.array_equal(imaging.decode(data).rgb, raw)


def test_grey_jpeg_output_has_no_rgb_profile() -> None:
    data = imaging.encode(Image.new("L", (16, 16), 128), "JPEG")
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L" and "icc_profile" not in im.info
