"""Parsing TorchServe requests for the stylekit handler: image bytes and options.

TorchServe hands a handler one dict per request: ``body`` for a raw or JSON body (JSON arrives
decoded), one key per multipart form field; headers come separately. This module turns that
into a :class:`StyleRequest` or raises the ``StylekitError`` (4xx) that the handler reports for
that item alone. It lives outside the handler file because TorchServe wants exactly one class
in the handler module.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdk import imaging
from sdk.api import parse_flag, parse_number
from sdk.errors import BadOptionError, InvalidImageError

HEADER_PREFIX = "x-stylekit-"
IMAGE_FIELDS = ("image", "data", "file")
OPTION_FIELDS = ("style", "strength", "preserve_color", "format", "max_side")


@dataclass
class StyleRequest:
    image: bytes
    style: str | dict[str, float] | None = None
    style_image: bytes | None = None
    strength: float = 1.0
    preserve_color: bool = False
    format: str = "PNG"
    max_side: int | None = None


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidImageError(f"The {what} is neither image bytes nor valid base64.") from exc
    raise InvalidImageError(f"The {what} must be image bytes or a base64 string, not {type(value).__name__}.")


def _as_text(value: Any) -> Any:
    return value.decode("utf-8", errors="replace") if isinstance(value, (bytes, bytearray)) else value


def _parse_style(value: Any) -> str | dict[str, float] | None:
    value = _as_text(value)
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise BadOptionError(f"The style blend {text!r} is not valid JSON.") from exc
        else:
            return text or None
    if isinstance(value, Mapping):
        try:
            return {str(k): float(v) for k, v in value.items()}
        except (TypeError, ValueError) as exc:
            raise BadOptionError("A style blend maps style names to numbers.") from exc
    raise BadOptionError(f"The style must be a name or a blend object, not {type(value).__name__}.")


def _parse_format(value: Any) -> str:
    return imaging.format_from_name(str(_as_text(value)).strip())


def parse_request(item: Mapping[str, Any], headers: Mapping[str, Any]) -> StyleRequest:
    """One TorchServe request (its parameters and headers) -> image bytes and options."""
    fields: dict[str, Any] = {}
    # Headers first: body and form fields given explicitly win over them.
    for key, value in headers.items():
        if isinstance(value, str) and key.lower().startswith(HEADER_PREFIX):
            fields[key.lower()[len(HEADER_PREFIX) :].replace("-", "_")] = value
    body = item.get("body")
    if isinstance(body, Mapping):  # a JSON object, decoded by TorchServe
        fields.update(body)
    elif isinstance(body, (bytes, bytearray)):
        body_type = headers.get("body")
        ctype = body_type.get("content-type", "") if isinstance(body_type, Mapping) else ""
        if "json" in str(ctype):
            raise BadOptionError("The request body is not a valid JSON object.")
        fields["image"] = body
    elif body is not None:
        raise BadOptionError("Send the image as the request body, a multipart field 'image' or JSON.")
    fields.update({k: v for k, v in item.items() if k != "body"})

    image = next((fields.pop(name) for name in IMAGE_FIELDS if fields.get(name) is not None), None)
    for name in IMAGE_FIELDS:
        fields.pop(name, None)
    if image is None:
        raise InvalidImageError("The request has no image (raw body, form field 'image' or JSON 'image').")
    req = StyleRequest(image=_as_bytes(image, "image"))
    if fields.get("style_image") is not None:
        req.style_image = _as_bytes(fields.pop("style_image"), "style image")
    fields.pop("style_image", None)
    req.style = _parse_style(fields.pop("style", None))
    if fields.get("strength") is not None:
        req.strength = float(parse_number("strength", _as_text(fields.pop("strength")), float))
    if fields.get("preserve_color") is not None:
        req.preserve_color = parse_flag("preserve_color", _as_text(fields.pop("preserve_color")))
    if fields.get("format") is not None:
        req.format = _parse_format(fields.pop("format"))
    if fields.get("max_side") not in (None, ""):
        req.max_side = int(parse_number("max_side", _as_text(fields.pop("max_side")), int))
    unknown = sorted(k for k, v in fields.items() if v is not None and k not in OPTION_FIELDS)
    if unknown:
        allowed = ", ".join((*OPTION_FIELDS, "style_image"))
        raise BadOptionError(f"Unknown option(s) {', '.join(unknown)}; known: image, {allowed}.")
    return req
