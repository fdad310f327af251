"""Parsing TorchServe requests for the stylekit handler: image bytes and options.

TorchServe hands a handler one dict per request: ``body`` for a raw or JSON body (JSON arrives
decoded), one key per multipart form field; headers come separately. This module turns that
into an :class:`Item` (the photo and a checked :class:`sdk.wire.StyleRequest`) or raises the
``StylekitError`` (4xx) that the handler reports for that item alone. It lives outside the
handler file because TorchServe wants exactly one class in the handler module.

Besides the photo a request can carry the image parts :data:`sdk.wire.IMAGE_PARTS`: the
arbitrary kind's painting (``style_image``) and the regions' ``mask``, each as a multipart
field or a base64 string in a JSON body. A raw-body request is the photo alone: its options
travel in headers, which cannot carry an image, so it has no painting and no mask.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sdk.errors import BadOptionError, InvalidImageError, InvalidMaskError
from sdk.wire import IMAGE_PARTS, OPTION_FIELDS, StyleRequest, parse_options

HEADER_PREFIX = "x-stylekit-"
IMAGE_FIELDS = ("image", "data", "file")
# A header can carry only a short value; longer ones are refused before any parsing.
MAX_HEADER_VALUE = 4096


@dataclass(frozen=True)
class Item:
    """One request of a TorchServe batch: the photo's bytes and the checked request."""

    image: bytes
    request: StyleRequest


# What each image part is called in messages, and the error a bad one raises.
_PART_NAMES = {"style_image": "style image", "mask": "mask"}
_PART_ERRORS: dict[str, type[InvalidImageError]] = {"mask": InvalidMaskError}


def _as_bytes(value: Any, what: str, error: type[InvalidImageError] = InvalidImageError) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise error(f"The {what} is neither image bytes nor valid base64.") from exc
    raise error(f"The {what} must be image bytes or a base64 string, not {type(value).__name__}.")


def parse_request(item: Mapping[str, Any], headers: Mapping[str, Any]) -> Item:
    """One TorchServe request (its parameters and headers) -> image bytes and options.

    The image parts (:data:`~sdk.wire.IMAGE_PARTS`) come from multipart fields or JSON
    (base64); a part that is present but empty is passed on as ``b""``, so it is refused (a
    mask: :class:`~sdk.errors.InvalidMaskError`) rather than taken as absent. Headers carry
    options only.
    """
    fields: dict[str, Any] = {}
    # Headers first: body and form fields given explicitly win over them.
    for key, value in headers.items():
        if isinstance(value, str) and key.lower().startswith(HEADER_PREFIX):
            if len(value) > MAX_HEADER_VALUE:
                raise BadOptionError(f"The header {key} is longer than {MAX_HEADER_VALUE} characters.")
            name = key.lower()[len(HEADER_PREFIX) :].replace("-", "_")
            if name in (*IMAGE_FIELDS, *IMAGE_PARTS):
                raise BadOptionError(
                    f"The header {key} would carry an image; headers carry options only. Send the "
                    f"{name} as a multipart field {name!r} or in a JSON body."
                )
            fields[name] = value
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
    parts = {
        part: _as_bytes(fields[part], _PART_NAMES.get(part, part), _PART_ERRORS.get(part, InvalidImageError))
        for part in IMAGE_PARTS
        if fields.get(part) is not None
    }
    request = parse_options(fields, ignore=(*IMAGE_FIELDS, *IMAGE_PARTS),
                            style_image=parts.get("style_image"), mask=parts.get("mask"))  # fmt: skip
    return Item(image=_as_bytes(image, "image"), request=request)


__all__ = ["HEADER_PREFIX", "IMAGE_FIELDS", "OPTION_FIELDS", "Item", "parse_request"]
