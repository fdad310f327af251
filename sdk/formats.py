"""Output image formats: their names, file extensions and MIME types, in one table.

A leaf module (standard library only), so the options parser (``sdk.wire``), the image
pipeline (``sdk.imaging``) and the servers share one table without importing each other.
"""

from __future__ import annotations

from pathlib import Path

from sdk.errors import BadOptionError

MIME: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
#: The file suffix each format is written with (what output file names end in).
SUFFIX: dict[str, str] = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
_EXTENSIONS: dict[str, str] = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "jpe": "JPEG",
    "jfif": "JPEG",
    "webp": "WEBP",
}


def normalise_format(name: str) -> str:
    fmt = str(name).strip().upper().lstrip(".")
    fmt = _EXTENSIONS.get(fmt.lower(), fmt)
    if fmt not in MIME:
        raise BadOptionError(f"Output format {name!r} is not supported; use PNG, JPEG or WEBP.")
    return fmt


def format_from_name(path_or_name: str) -> str:
    """``"x.jpg"`` -> ``"JPEG"``; a bare format or extension (``"png"``, ``"WEBP"``) works too."""
    suffix = Path(path_or_name).suffix
    key = suffix[1:] if suffix else path_or_name
    fmt = _EXTENSIONS.get(key.strip().lower())
    if fmt is None and key.strip().upper() in MIME:
        fmt = key.strip().upper()
    if fmt is None:
        raise BadOptionError(
            f"Cannot tell the image format from {path_or_name!r}; use a .png, .jpg or .webp name."
        )
    return fmt


def mime_type(format: str) -> str:
    """MIME type for an output format name (``"JPEG"`` -> ``"image/jpeg"``)."""
    return MIME[normalise_format(format)]


__all__ = ["MIME", "SUFFIX", "format_from_name", "mime_type", "normalise_format"]
