"""The handler's request parsing, on the shapes TorchServe 0.12 hands a handler.

Observed on a real server: a raw body arrives as ``{"body": bytearray}`` with the parameter's
content type under ``headers["body"]``; a JSON body as ``{"body": dict}``; a multipart form as
one key per field (text fields as bytearray with an empty content type); request headers keep
their case. The end-to-end behaviour (statuses, batches) is tested in ``test_serving.py`` (and
for scale, mask and outside in ``test_serving_regions.py``).
"""

from __future__ import annotations

import base64

import pytest

from handlers.requests import parse_request
from sdk.errors import BadOptionError, InvalidImageError, InvalidMaskError
from sdk.wire import IMAGE_PARTS, StyleRequest, parse_options

IMAGE = b"\xff\xd8\xff\xe0 not decoded here"
MASK = b"\x89PNG a mask, not decoded here"
LONG_BLEND = ",".join(f"s{i}=1" for i in range(1000)).encode()
B64 = base64.b64encode(IMAGE).decode()


def test_raw_body_with_header_options() -> None:
    req = parse_request(
        {"body": bytearray(IMAGE)},
        {
            "body": {"content-type": "image/jpeg"},
            "Authorization": "Bearer secret",
            "X-Stylekit-Style": "starry-night",
            "X-Stylekit-Strength": "0.25",
            "X-Stylekit-Preserve-Color": "yes",
            "X-Stylekit-Format": "jpg",
            "X-Stylekit-Max-Side": "640",
        },
    )
    assert req.image == IMAGE
    assert req.request == StyleRequest("starry-night", 0.25, True, 640, "JPEG")


def test_multipart_fields_win_over_headers() -> None:
    item = {
        "image": bytearray(IMAGE),
        "style_image": bytearray(b"painting"),
        "style": bytearray(b'{"a": 0.7, "b": 0.3}'),
        "strength": bytearray(b"0.5"),
    }
    headers = {"image": {"content-type": "application/octet-stream"}, "X-Stylekit-Strength": "0.9"}
    req = parse_request(item, headers)
    assert req.request == StyleRequest({"a": 0.7, "b": 0.3}, strength=0.5, style_image=b"painting")


def test_json_body_with_base64() -> None:
    body = {
        "image": base64.b64encode(IMAGE).decode(),
        "style": {"a": 1, "b": 2},
        "preserve_color": 1,
        "format": "webp",
    }
    req = parse_request({"body": body}, {"body": {"content-type": "application/json"}})
    assert req.image == IMAGE
    assert req.request == StyleRequest({"a": 1.0, "b": 2.0}, preserve_color=True, format="WEBP")


def test_the_mask_is_an_image_part_of_a_form_or_json() -> None:
    # Multipart: the mask is a file field like style_image; scale and outside are text fields.
    item = {"image": bytearray(IMAGE), "mask": bytearray(MASK), "scale": bytearray(b"2"),
            "outside": bytearray(b'{"b": 1, "c": 1}'), "style": bytearray(b"a")}  # fmt: skip
    headers = {"image": {"content-type": "image/jpeg"}, "mask": {"content-type": "image/png"}}
    req = parse_request(item, headers)
    assert req.image == IMAGE
    assert req.request == StyleRequest("a", scale=2.0, mask=MASK, outside={"b": 1.0, "c": 1.0})
    # JSON: base64 like the photo; numbers as JSON numbers.
    body = {"image": B64, "mask": base64.b64encode(MASK).decode(), "scale": 0.5, "outside": "b", "style": "a"}
    req = parse_request({"body": body}, {"body": {"content-type": "application/json"}})
    assert req.request == StyleRequest("a", scale=0.5, mask=MASK, outside="b")
    # Headers carry the options of a form or JSON request too (the parts win over them).
    req = parse_request({"image": IMAGE, "mask": MASK}, {"X-Stylekit-Scale": "4", "X-Stylekit-Outside": "b"})
    assert req.request == StyleRequest(scale=4.0, mask=MASK, outside="b")


def test_an_empty_mask_part_is_passed_on_to_be_refused_not_dropped() -> None:
    # An empty file field (or JSON "") is a mask that was sent: the engine refuses it
    # (InvalidMaskError), rather than the request running as if no mask had been sent.
    assert parse_request({"image": IMAGE, "mask": bytearray()}, {}).request.mask == b""
    assert parse_request({"body": {"image": B64, "mask": ""}}, {}).request.mask == b""
    assert parse_request({"image": IMAGE}, {}).request.mask is None


def test_a_raw_body_request_has_no_mask() -> None:
    raw = {"body": bytearray(IMAGE)}
    headers = {"body": {"content-type": "image/jpeg"}, "X-Stylekit-Scale": "2"}
    req = parse_request(raw, headers)
    assert req.image == IMAGE and req.request == StyleRequest(scale=2.0)
    with pytest.raises(BadOptionError, match="headers carry options only"):
        parse_request(raw, {**headers, "X-Stylekit-Mask": base64.b64encode(MASK).decode()})


@pytest.mark.parametrize(
    ("item", "headers", "error", "match"),
    [
        ({"body": {"style": "a"}}, {}, InvalidImageError, "no image"),
        ({"body": {"image": "%%%not base64"}}, {}, InvalidImageError, "base64"),
        ({"body": {"image": 12}}, {}, InvalidImageError, "base64 string"),
        (
            {"body": bytearray(b"{broken json")},
            {"body": {"content-type": "application/json"}},
            BadOptionError,
            "JSON",
        ),
        ({"body": "text body"}, {}, BadOptionError, "Send the image"),
        ({"image": IMAGE, "strength": b"strong"}, {}, BadOptionError, "strength"),
        ({"image": IMAGE, "max_side": b"1.5"}, {}, BadOptionError, "whole number"),
        # JSON numbers as TorchServe's worker decodes them (1e309 and Infinity become inf).
        ({"body": {"image": B64, "max_side": float("inf")}}, {}, BadOptionError, "max_side must be a whole"),
        ({"body": {"image": B64, "max_side": 1.5}}, {}, BadOptionError, "max_side must be a whole"),
        ({"body": {"image": B64, "max_side": True}}, {}, BadOptionError, "max_side must be a whole"),
        ({"body": {"image": B64, "max_side": 10**400}}, {}, BadOptionError, "max_side must be a whole"),
        ({"body": {"image": B64, "strength": float("nan")}}, {}, BadOptionError, "strength must be a number"),
        ({"body": {"image": B64, "strength": float("inf")}}, {}, BadOptionError, "strength must be a number"),
        ({"body": {"image": B64, "strength": 10**400}}, {}, BadOptionError, "strength must be a number"),
        ({"image": IMAGE, "max_side": b"+7"}, {}, BadOptionError, "whole number"),
        ({"image": IMAGE, "max_side": "٣".encode()}, {}, BadOptionError, "whole number"),
        ({"image": IMAGE, "max_side": b"0"}, {}, BadOptionError, "from 1 to 20000"),
        ({"image": IMAGE, "strength": b"1e309"}, {}, BadOptionError, "strength"),
        ({"image": IMAGE, "strength": b"NaN"}, {}, BadOptionError, "strength"),
        ({"image": IMAGE}, {"X-Stylekit-Max-Side": "1e309"}, BadOptionError, "whole number"),
        ({"image": IMAGE}, {"X-Stylekit-Style": "x" * 5000}, BadOptionError, "longer than"),
        ({"image": IMAGE, "style": b"x" * 10_000}, {}, BadOptionError, "1 to 100 printable"),
        ({"image": IMAGE, "style": b"star\x00ry"}, {}, BadOptionError, "printable"),
        ({"image": IMAGE, "style": b"\xff\xfe"}, {}, BadOptionError, "UTF-8"),
        ({"image": IMAGE, "style": b'{"a": NaN}'}, {}, BadOptionError, "blend"),
        (
            {"body": {"image": B64, "style": {f"s{i}": 1 for i in range(1000)}}},
            {},
            BadOptionError,
            "at most 64",
        ),
        ({"image": IMAGE, "style": LONG_BLEND}, {}, BadOptionError, "at most 64"),
        ({"image": IMAGE, "preserve_color": b"maybe"}, {}, BadOptionError, "true or false"),
        ({"image": IMAGE, "format": b"tiff"}, {}, BadOptionError, "format"),
        ({"image": IMAGE, "style": b"{not json"}, {}, BadOptionError, "blend"),
        ({"image": IMAGE, "style": b'{"a": "x"}'}, {}, BadOptionError, "weight of 'a' must be a number"),
        ({"image": IMAGE, "stength": b"0.5"}, {}, BadOptionError, "Unknown option"),
        # scale: a finite number from 0.25 to 8, however it arrives.
        ({"image": IMAGE, "scale": b"0"}, {}, BadOptionError, "scale must be a number from 0.25 to 8"),
        ({"image": IMAGE, "scale": b"1e309"}, {}, BadOptionError, "scale must be a number"),
        ({"image": IMAGE, "scale": b"nan"}, {}, BadOptionError, "scale must be a number"),
        ({"image": IMAGE, "scale": b"9"}, {}, BadOptionError, "scale must be a number"),
        ({"body": {"image": B64, "scale": float("inf")}}, {}, BadOptionError, "scale must be a number"),
        ({"body": {"image": B64, "scale": True}}, {}, BadOptionError, "scale must be a number"),
        ({"image": IMAGE}, {"X-Stylekit-Scale": "-2"}, BadOptionError, "scale must be a number"),
        # outside names a style where the mask is black: it needs a mask.
        ({"image": IMAGE, "outside": b"b"}, {}, BadOptionError, "give a mask too"),
        ({"image": IMAGE}, {"X-Stylekit-Outside": "b"}, BadOptionError, "give a mask too"),
        ({"image": IMAGE, "mask": MASK, "outside": b"x" * 200}, {}, BadOptionError, "1 to 100 printable"),
        # A mask that is not bytes or base64 is a bad mask; headers never carry an image.
        ({"body": {"image": B64, "mask": "%%%not base64"}}, {}, InvalidMaskError, "mask is neither"),
        ({"body": {"image": B64, "mask": 7}}, {}, InvalidMaskError, "mask must be image bytes"),
        ({"image": IMAGE}, {"X-Stylekit-Mask": "aGk="}, BadOptionError, "options only"),
        ({"image": IMAGE}, {"X-Stylekit-Style-Image": "aGk="}, BadOptionError, "options only"),
    ],
)
def test_bad_requests_raise_typed_errors(
    item: dict, headers: dict, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        parse_request(item, headers)


@pytest.mark.parametrize(
    "request_",
    [
        StyleRequest(),
        StyleRequest("starry-night", 0.25, True, 640, "JPEG"),
        StyleRequest({"a": 0.7, "b": 0.3}, strength=1 / 3, format="WEBP"),
        StyleRequest("multistyle26:19", max_side=1),
        StyleRequest("a", scale=2.5, mask=MASK, outside={"b": 0.25, "c": 0.75}),
        StyleRequest("a", scale=0.25, mask=MASK, outside="b"),
        StyleRequest("a", scale=8.0, style_image=b"painting"),
    ],
)
def test_one_wire_encoding_both_ways(request_: StyleRequest) -> None:
    """What a client sends (to_fields) is what every server reads back (parse_options)."""
    fields = request_.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    parts = {part: getattr(request_, part) for part in IMAGE_PARTS if getattr(request_, part) is not None}
    assert parse_options(fields, **parts) == request_
    as_form = {"image": IMAGE, **{k: v.encode() for k, v in fields.items()}}  # how TorchServe hands them over
    as_form.update({k: bytearray(v) for k, v in parts.items()})
    assert parse_request(as_form, {}).request == request_


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"strength": "0.5"}, "strength must be a number, not the text"),
        ({"max_side": 1.5}, "max_side must be a whole number"),
        ({"max_side": True}, "max_side must be a whole number"),
        ({"preserve_color": "yes"}, "preserve_color must be True or False"),
        ({"style": {"a": "1"}}, "must be a number, not the text"),
        ({"style": ""}, "cannot be empty"),
        ({"format": "tiff"}, "Cannot tell the image format"),
    ],
)
def test_a_request_made_in_python_is_checked_when_made(options: dict, match: str) -> None:
    with pytest.raises(BadOptionError, match=match):
        StyleRequest(**options)
