"""Parsing TorchServe requests for the stylekit handler: image bytes and options.

TorchServe hands a handler one dict per request: ``body`` for a raw or JSON body (JSON arrives
decoded), one key per multipart form field; headers come separately. This module turns that
into an :class:`Item` (the photo and a checked :class:`sdk.wire.StyleRequest`) or raises the
``StylekitError`` (4xx) that the handler reports for that item alone. It lives outside the
handler file because TorchServe wants exactly one class in the handler module.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdk.errors import BadOptionError, InvalidImageError
from sdk.wire import OPTION_FIELDS, StyleRequest, parse_options

HEADER_PREFIX = "x-stylekit-"
IMAGE_FIELDS = ("image", "data", "file")
# A header can carry only a short value; longer ones are refused before any parsing.
MAX_HEADER_VALUE = 4096


@dataclass(frozen=True)
class Item:
    """One request of a TorchServe batch: the photo's bytes and the checked request."""

    image: bytes
    request: StyleRequest


def _as_bytes(value: Any, what: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidImageError(f"The {what} is neither image bytes nor valid base64.") from exc
    raise InvalidImageError(f"The {what} must be image bytes or a base64 string, not {type(value).__name__}.")


def parse_request(item: Mapping[str, Any], headers: Mapping[str, Any]) -> Item:
    """One TorchServe request (its parameters and headers) -> image bytes and options."""
    fields: dict[str, Any] = {}
    # Headers first: body and form fields given explicitly win over them.
    for key, value in headers.items():
        if isinstance(value, str) and key.lower().startswith(HEADER_PREFIX):
            if len(value) > MAX_HEADER_VALUE:
                raise BadOptionError(f"The header {key} is longer than {MAX_HEADER_VALUE} characters.")
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

    image = next((fields[name] for name in IMAGE_FIELDS if fields.get(name) is not None), None)
    if image is None:
        raise InvalidImageError("The request has no image (raw body, form field 'image' or JSON 'image').")
    painting = fields.get("style_image")
    style_image = None if painting is None else _as_bytes(painting, "style image")
    request = parse_options(fields, ignore=(*IMAGE_FIELDS, "style_image"), style_image=style_image)
    return Item(image=_as_bytes(image, "image"), request=request)


__all__ = ["HEADER_PREFIX", "IMAGE_FIELDS", "OPTION_FIELDS", "Item", "parse_request"]
