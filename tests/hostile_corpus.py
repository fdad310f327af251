"""Odd files and absurd options, as an outsider would send them to any front end.

Each :class:`Case` is what a front end receives and what it must do with it: give back an image
of ``size`` (width, height), or refuse it with a 4xx / typed error (``size=None``). The files
are made here, from one photo of ``../shared/data``; nothing is stored in the repo.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    size: tuple[int, int] | None  # None: must be refused
    options: dict[str, Any] = field(default_factory=dict)


def bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of width x height zeros: a few hundred KB that would decode to gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _save(im: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def odd_files(photo: Image.Image) -> list[Case]:
    """Files of every odd kind; ``photo`` is an RGB photo (a 64x48 crop of it is used)."""
    rgb = photo.convert("RGB").resize((64, 48))
    arr = np.asarray(rgb)
    jpeg = _save(rgb, "JPEG", quality=90)
    rgba = rgb.copy()
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))))
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: displayed 48x64
    frames = [rgb, rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    grey16 = Image.fromarray(arr[..., 0].astype(np.uint16) * 257)  # mode I;16
    return [
        Case("empty", b"", None),
        Case("text", b"just some text, not an image\n" * 20, None),
        Case("truncated-jpeg", jpeg[: len(jpeg) // 2], None),
        Case("html", b"<!doctype html><html><body><script>alert(1)</script></body></html>", None),
        Case("png-bomb", bomb_png(19_000, 19_000), None),
        Case("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>', None),
        Case("cmyk-jpeg", _save(rgb.convert("CMYK"), "JPEG", quality=90), (64, 48)),
        Case("16-bit-png", _save(grey16, "PNG"), (64, 48)),
        Case("palette-png", _save(rgb.convert("P"), "PNG"), (64, 48)),
        Case("alpha-png", _save(rgba, "PNG"), (64, 48)),
        Case("exif-rotated-jpeg", _save(rgb, "JPEG", quality=90, exif=exif), (48, 64)),
        Case("animated-gif", gif.getvalue(), (64, 48)),
        Case("webp", _save(rgb, "WEBP", quality=90), (64, 48)),
        Case("tiff", _save(rgb, "TIFF"), (64, 48)),
        Case("bmp", _save(rgb, "BMP"), (64, 48)),
        Case("1x1", _save(rgb.resize((1, 1)), "PNG"), (1, 1)),
        Case("3x5", _save(rgb.resize((3, 5)), "PNG"), (3, 5)),
        Case("4000x16", _save(rgb.resize((4000, 16)), "PNG"), (4000, 16)),
        Case("16x4000", _save(rgb.resize((16, 4000)), "PNG"), (16, 4000)),
    ]


#: Options in their wire form (what a form field, JSON value or header carries), each refused.
ABSURD_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("strength-negative", {"strength": "-0.5"}),
    ("strength-nan", {"strength": "NaN"}),
    ("strength-inf", {"strength": "inf"}),
    ("strength-1e309", {"strength": "1e309"}),
    ("strength-text", {"strength": "strong"}),
    ("max-side-negative", {"max_side": "-1"}),
    ("max-side-zero", {"max_side": "0"}),
    ("max-side-float", {"max_side": "1.5"}),
    ("max-side-1e309", {"max_side": "1e309"}),
    ("max-side-huge", {"max_side": "1" + "0" * 30}),
    ("max-side-plus", {"max_side": "+7"}),
    ("max-side-arabic-digit", {"max_side": "\u0663"}),
    ("max-side-fullwidth-digit", {"max_side": "\uff17"}),
    ("preserve-color-word", {"preserve_color": "maybe"}),
    ("format-unknown", {"format": "tiff"}),
    ("format-path", {"format": "/etc/passwd.png"}),
    ("style-10k-chars", {"style": "x" * 10_000}),
    ("style-unknown", {"style": "no-such-style"}),
    ("style-absolute-path", {"style": "/etc/passwd"}),
    ("style-package-path", {"style": "/tmp/x/arbitrary.pt"}),
    ("style-relative-path", {"style": "../../etc/passwd.json"}),
    ("style-home", {"style": "~/.bashrc"}),
    ("style-model-and-path", {"style": "multistyle26:/etc/passwd"}),
    ("style-control-chars", {"style": "starry\x00night"}),
    ("blend-1000", {"style": ",".join(f"s{i}=1" for i in range(1000))}),
    ("blend-nan-weight", {"style": "starry-night=nan,red-storm=1"}),
    ("blend-negative-weight", {"style": "starry-night=-1,red-storm=1"}),
    ("blend-zero", {"style": "starry-night=0,red-storm=0"}),
    ("blend-path", {"style": "/etc/passwd=1,starry-night=1"}),
    ("scale-nan", {"scale": "nan"}),
    ("scale-1e309", {"scale": "1e309"}),
    ("scale-zero", {"scale": "0"}),
    ("scale-negative", {"scale": "-2"}),
    ("scale-huge", {"scale": "1e9"}),
    ("scale-word", {"scale": "big"}),
    ("outside-without-mask", {"outside": "red-storm"}),
    ("outside-path-without-mask", {"outside": "/etc/passwd"}),
    ("unknown-option", {"stength": "0.5"}),
]

#: Odd but valid options: the image comes back (at ``max_side`` or its own size).
ODD_VALID_OPTIONS: list[tuple[str, dict[str, Any], int | None]] = [
    ("max-side-1", {"max_side": "1"}, 1),
    ("max-side-3", {"max_side": "3"}, 3),
    ("max-side-8", {"max_side": "8"}, 8),
    ("max-side-20000", {"max_side": "20000"}, None),
    ("max-side-spaces", {"max_side": " 32 "}, 32),
    ("strength-0", {"strength": "0"}, None),
    ("scale-8", {"scale": "8"}, None),
    ("scale-quarter", {"scale": "0.25"}, None),
    ("scale-spaces", {"scale": " 2 "}, None),
    ("alias-digits", {"style": "19"}, None),
    ("alias-upper", {"style": "STARRY-NIGHT"}, None),
]
