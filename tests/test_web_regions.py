"""The web app's stroke size and regions (issue 15): ``scale``, ``mask`` and ``outside`` on
``POST /api/stylize``, over HTTP (Starlette's TestClient) against the real local engine and the
real built-in styles, and what a style server behind the app is sent. Photos are small, so
every call stays quick."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from sdk import wire
from sdk.info import StyleInfo
from sdk.web.app import WebSettings, create_app

# The app answers to loopback names only (Host allow-list); TestClient's default is "testserver".
LOCAL = "http://localhost"
W, H = 160, 96  # not square, so a swapped width and height would show


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


def _half_mask(size: tuple[int, int] = (W, H), mode: str = "L") -> bytes:
    """Black on the left half, white on the right half."""
    w, h = size
    value = np.zeros((h, w), np.uint8)
    value[:, w // 2 :] = 255
    return _png(Image.fromarray(value, "L").convert(mode))


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(device="cpu"), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def two_styles(client: TestClient) -> tuple[str, str]:
    """Two sub-styles of the built-in multistyle network."""
    multi = [s["name"] for s in client.get("/api/styles").json() if s["kind"] == "multistyle"]
    return str(multi[0]), str(multi[1])


@pytest.fixture(scope="module")
def photo(content_images: list[Path]) -> bytes:
    with Image.open(next(p for p in content_images if p.stem == "chicago")) as im:
        return _png(im.convert("RGB").resize((W, H)))


def _post(client: TestClient, photo: bytes, mask: bytes | None = None, mask_type: str = "image/png",
          **data: str) -> tuple[int, bytes]:  # fmt: skip
    files = {"image": ("photo.png", photo, "image/png")}
    if mask is not None:
        files["mask"] = ("mask.png", mask, mask_type)
    response = client.post("/api/stylize", files=files, data=data)
    return response.status_code, response.content


def _error(status: int, body: bytes) -> tuple[int, str, str]:
    error = json.loads(body)
    assert error["status"] == status and error["message"]
    return status, error["error"], error["message"]


# -- scale ------------------------------------------------------------------------------------


def test_scale_paints_bigger_strokes_at_the_photos_size(client: TestClient, photo: bytes,
                                                        two_styles: tuple[str, str]) -> None:
    style = two_styles[0]
    status, plain = _post(client, photo, style=style)
    assert status == 200, plain
    # scale=1 is exactly today's answer.
    assert _post(client, photo, style=style, scale="1") == (200, plain)
    status, bigger = _post(client, photo, style=style, scale="2")
    assert status == 200, bigger
    assert _pixels(bigger).shape == (H, W, 3)  # back at the photo's size
    assert np.abs(_pixels(bigger) - _pixels(plain)).mean() > 2, "scale=2 changed nothing"
    status, finer = _post(client, photo, style=style, scale="0.5")
    assert status == 200 and _pixels(finer).shape == (H, W, 3)


@pytest.mark.parametrize("scale", ["nan", "NaN", "inf", "-inf", "1e309", "0", "0.1", "9", "-2", "2x", "+2",
                                   "٢"])  # fmt: skip
def test_bad_scales_are_400(client: TestClient, photo: bytes, two_styles: tuple[str, str],
                            scale: str) -> None:  # fmt: skip
    status, body = _post(client, photo, style=two_styles[0], scale=scale)
    assert _error(status, body)[:2] == (400, "bad_option")


def test_a_fine_stroke_is_held_to_the_longest_side(photo: bytes, two_styles: tuple[str, str]) -> None:
    """Below 1 the network paints at more than the photo's size: at most the server's max_side."""
    with TestClient(create_app(device="cpu", settings=WebSettings(max_side=200)), base_url=LOCAL) as c:
        status, body = _post(c, photo, style=two_styles[0], scale="0.5")  # 160 px -> 320 px
        _, code, message = _error(status, body)
        assert (status, code) == (400, "bad_option")
        assert "320 px" in message and "200 px" in message and "at least 0.8" in message
        status, body = _post(c, photo, style=two_styles[0], scale="0.8")  # exactly 200 px
        assert status == 200 and _pixels(body).shape == (H, W, 3)
        # A smaller longest side makes room for a finer stroke.
        status, body = _post(c, photo, style=two_styles[0], scale="0.5", max_side="100")
        assert status == 200 and _pixels(body).shape == (60, 100, 3)


# -- mask and outside -------------------------------------------------------------------------


def test_mask_keeps_the_photo_where_black(client: TestClient, photo: bytes,
                                          two_styles: tuple[str, str]) -> None:  # fmt: skip
    style = two_styles[0]
    plain = _pixels(_post(client, photo, style=style)[1])
    status, body = _post(client, photo, _half_mask(), style=style)
    assert status == 200, body
    result, original = _pixels(body), _pixels(photo)
    assert result.shape == (H, W, 3)
    assert np.array_equal(result[:, : W // 2], original[:, : W // 2]), "the black half is not the photo"
    assert np.abs(result[:, W // 2 :] - plain[:, W // 2 :]).max() <= 1, "the white half is not the style"
    assert np.abs(result[:, W // 2 :] - original[:, W // 2 :]).mean() > 10


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "1", "P"])
def test_a_mask_of_another_size_and_mode(client: TestClient, photo: bytes, two_styles: tuple[str, str],
                                         mode: str) -> None:  # fmt: skip
    """A mask at half the photo's size (resized softly by the server), in any mode."""
    status, body = _post(client, photo, _half_mask((W // 2, H // 2), mode), style=two_styles[0])
    assert status == 200, body
    result, original = _pixels(body), _pixels(photo)
    edge = W // 2 - 4  # the resized edge blends over a few pixels
    assert np.array_equal(result[:, :edge], original[:, :edge])
    assert np.abs(result[:, W // 2 + 4 :] - original[:, W // 2 + 4 :]).mean() > 10


def test_transparent_is_like_black(client: TestClient, photo: bytes, two_styles: tuple[str, str]) -> None:
    rgba = np.full((H, W, 4), 255, np.uint8)
    rgba[:, : W // 2, 3] = 0  # white, but transparent, on the left
    status, body = _post(client, photo, _png(Image.fromarray(rgba, "RGBA")), style=two_styles[0])
    assert status == 200, body
    assert np.array_equal(_pixels(body)[:, : W // 2], _pixels(photo)[:, : W // 2])


def test_outside_paints_a_second_style_where_black(client: TestClient, photo: bytes,
                                                   two_styles: tuple[str, str]) -> None:
    a, b = two_styles
    only_a = _pixels(_post(client, photo, style=a)[1])
    only_b = _pixels(_post(client, photo, style=b)[1])
    # outside takes a name or alias of the listing, in any case, as style does.
    status, body = _post(client, photo, _half_mask(), style=a, outside=b.upper(), format="png")
    assert status == 200, body
    result = _pixels(body)
    assert np.abs(result[:, : W // 2] - only_b[:, : W // 2]).max() <= 1
    assert np.abs(result[:, W // 2 :] - only_a[:, W // 2 :]).max() <= 1
    assert np.abs(only_a - only_b).mean() > 5


def test_outside_and_scale_together(client: TestClient, photo: bytes, two_styles: tuple[str, str]) -> None:
    a, b = two_styles
    status, body = _post(client, photo, _half_mask(), style=a, outside=b, scale="2", format="jpeg")
    assert status == 200, body
    assert Image.open(io.BytesIO(body)).format == "JPEG" and _pixels(body).shape == (H, W, 3)


@pytest.mark.parametrize(
    ("mask", "why"),
    [
        (b"this is not a picture at all", "The mask"),
        (b"", "empty"),
        (_half_mask((W, W)), "aspect ratio"),  # square: the photo is 160x96
        (_half_mask((W, int(H * 1.03))), "aspect ratio"),  # 3% off
    ],
)
def test_bad_masks_are_400_invalid_mask(client: TestClient, photo: bytes, two_styles: tuple[str, str],
                                        mask: bytes, why: str) -> None:  # fmt: skip
    status, body = _post(client, photo, mask, style=two_styles[0])
    _, code, message = _error(status, body)
    assert (status, code) == (400, "invalid_mask")
    assert why in message


def test_a_mask_within_two_percent_of_the_photos_shape(client: TestClient, photo: bytes,
                                                       two_styles: tuple[str, str]) -> None:
    status, body = _post(client, photo, _half_mask((W, H + 1)), style=two_styles[0])  # 1% taller
    assert status == 200, body


@pytest.mark.parametrize(
    ("data", "mask", "status", "code"),
    [
        ({"outside": "{b}"}, None, 400, "bad_option"),  # outside needs a mask
        ({"outside": "no-such-style"}, "half", 404, "unknown_style"),
        ({"outside": "/etc/passwd"}, "half", 404, "unknown_style"),  # a name, never a file
        ({"outside": "{b}=x"}, "half", 400, "bad_option"),
        ({"outside": "x" * 101}, "half", 400, "bad_option"),
    ],
)
def test_bad_outside(client: TestClient, photo: bytes, two_styles: tuple[str, str], data: dict[str, str],
                     mask: str | None, status: int, code: str) -> None:  # fmt: skip
    filled = {k: v.format(b=two_styles[1]) for k, v in data.items()}
    got, body = _post(client, photo, _half_mask() if mask else None, style=two_styles[0], **filled)
    assert _error(got, body)[:2] == (status, code)


def test_a_mask_that_is_text_is_415(client: TestClient, photo: bytes, two_styles: tuple[str, str]) -> None:
    status, body = _post(client, photo, b"white on the right", "text/plain", style=two_styles[0])
    _, code, message = _error(status, body)
    assert (status, code) == (415, "unsupported_media_type") and "not an image" in message


def test_a_mask_sent_as_text_is_400(client: TestClient, photo: bytes, two_styles: tuple[str, str]) -> None:
    response = client.post("/api/stylize", files={"image": ("p.png", photo, "image/png")},
                           data={"style": two_styles[0], "mask": "left half"})  # fmt: skip
    assert response.status_code == 400 and "must be a file upload" in response.json()["message"]


def test_two_masks_are_400(client: TestClient, photo: bytes, two_styles: tuple[str, str]) -> None:
    mask = _half_mask()
    files = [("image", ("p.png", photo, "image/png")), ("mask", ("a.png", mask, "image/png")),
             ("mask", ("b.png", mask, "image/png"))]  # fmt: skip
    response = client.post("/api/stylize", files=files, data={"style": two_styles[0]})
    assert response.status_code == 400


# -- size limits ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_limit_client() -> Iterator[TestClient]:
    with TestClient(create_app(device="cpu", settings=WebSettings(max_upload_bytes=100_000)),
                    base_url=LOCAL) as c:  # fmt: skip
        yield c


def _noise(side: int, seed: int = 0) -> bytes:
    """An incompressible PNG: about 3 * side * side bytes."""
    noise = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    return _png(Image.fromarray(noise))


def test_an_oversized_mask_is_413(small_limit_client: TestClient, photo: bytes,
                                  two_styles: tuple[str, str]) -> None:  # fmt: skip
    big = _noise(300)
    assert len(big) > 200_000
    status, body = _post(small_limit_client, photo, big, style=two_styles[0])
    assert _error(status, body)[:2] == (413, "image_too_large")


def test_photo_and_mask_together_over_the_limit_is_413(small_limit_client: TestClient,
                                                       two_styles: tuple[str, str]) -> None:  # fmt: skip
    photo, mask = _noise(160, 1), _noise(160, 2)  # about 77 KB each, 100 KB allowed in all
    assert len(photo) < 100_000 and len(mask) < 100_000 < len(photo) + len(mask)
    status, body = _post(small_limit_client, photo, mask, style=two_styles[0])
    assert _error(status, body)[:2] == (413, "image_too_large")


def test_a_streamed_mask_is_cut_off_at_the_limit(small_limit_client: TestClient) -> None:
    """No Content-Length (chunked): the mask part is counted as it arrives."""
    boundary = "stylekitboundary"

    def body() -> Iterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="mask"; filename="m.png"\r\n'
               "Content-Type: image/png\r\n\r\n").encode()  # fmt: skip
        for _ in range(100):
            yield b"\xff" * 10_000  # 1 MB in all, ten times the limit

    response = small_limit_client.post(
        "/api/stylize", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 413


def test_a_mask_over_the_pixel_limit_is_413(monkeypatch: pytest.MonkeyPatch, photo: bytes,
                                            two_styles: tuple[str, str]) -> None:  # fmt: skip
    monkeypatch.setenv("STYLEKIT_MAX_PIXELS", "20000")  # the photo has 15360, the mask 61440
    with TestClient(create_app(device="cpu"), base_url=LOCAL) as c:
        status, body = _post(c, photo, _half_mask((2 * W, 2 * H)), style=two_styles[0])
    _, code, message = _error(status, body)
    assert (status, code) == (413, "image_too_large") and "mask" in message


# -- the API's description and a style server behind the app -----------------------------------


def test_openapi_lists_the_new_fields(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/api/stylize"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    fields = body["properties"]
    assert fields["scale"]["minimum"] == wire.MIN_SCALE and fields["scale"]["maximum"] == wire.MAX_SCALE
    assert fields["mask"]["format"] == "binary" and "outside" in fields


class _Recorder:
    """A style server's client that keeps what the app sends it and answers with a grey PNG."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, wire.StyleRequest]] = []

    def styles(self, refresh: bool = True) -> list[StyleInfo]:
        def info(name: str) -> StyleInfo:
            return StyleInfo(name=name, kind="multistyle", description="", aliases=(f"{name}-alias",),
                             source="", license="CC0-1.0", origin="torchserve:m", package="m", index=0,
                             revision="")  # fmt: skip

        return [info("wave"), info("mosaic")]

    def send(self, image: bytes, request: wire.StyleRequest) -> bytes:
        self.sent.append((image, request))
        return _png(Image.new("RGB", (W, H), (128, 128, 128)))


def test_a_style_server_gets_scale_mask_and_outside(photo: bytes) -> None:
    backend = _Recorder()
    mask = _half_mask()
    with TestClient(create_app(backend), base_url=LOCAL) as c:
        status, body = _post(c, photo, mask, style="wave", outside="MOSAIC-alias", scale="2.5")
        assert status == 200, body
        status, body = _post(c, photo, style="wave")
        assert status == 200, body
        status, body = _post(c, photo, style="wave", outside="mosaic")  # no mask: refused here
        assert _error(status, body)[:2] == (400, "bad_option")
    (image, request), (_, plain) = backend.sent
    assert image == photo and request.mask == mask  # as uploaded, bytes for bytes
    assert (request.style, request.outside, request.scale) == ("wave", "mosaic", 2.5)  # canonical names
    assert request.to_fields()["scale"] == "2.5" and request.to_fields()["outside"] == "mosaic"
    assert (plain.scale, plain.mask, plain.outside) == (1.0, None, None)
    assert "scale" not in plain.to_fields()  # today's request, unchanged


# -- the live camera's stroke size ------------------------------------------------------------


def _live_frame(ws: Any, data: bytes) -> tuple[dict[str, Any], np.ndarray]:
    """Send one frame (``test_web_video._frame``: resent after a rate drop); metadata and pixels."""
    from test_web_video import _frame  # here: that module needs the video extra at import

    meta, body = _frame(ws, data)
    return meta, _pixels(body)


def test_live_takes_a_stroke_size(client: TestClient, photo: bytes, two_styles: tuple[str, str]) -> None:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    style = two_styles[0]
    frame = _png(Image.open(io.BytesIO(photo)).convert("RGB"))
    with client.websocket_connect(f"ws://localhost/api/live?style={style}&scale=2") as ws:
        assert json.loads(ws.receive_text()) == {"style": style, "scale": 2.0}
        meta, big_strokes = _live_frame(ws, frame)
        assert (meta["scale"], meta["width"], meta["height"]) == (2.0, W, H)
        # A bad stroke size is one error; the stream goes on at the size it had.
        for bad in ("nan", 1e309, 0.1, True, "2x"):
            ws.send_text(json.dumps({"scale": bad}))
            error = json.loads(ws.receive_text())
            assert error["error"] == "bad_option", error
        ws.send_text(json.dumps({"scale": 1}))
        assert json.loads(ws.receive_text()) == {"scale": 1.0}
        meta, plain = _live_frame(ws, frame)
        assert meta["scale"] == 1.0 and meta["style"] == style
        assert np.abs(plain - big_strokes).mean() > 2, "the stroke size did not change the frame"
        ws.send_text(json.dumps({"style": two_styles[1], "scale": 1.5}))
        assert json.loads(ws.receive_text()) == {"style": two_styles[1], "scale": 1.5}
        ws.send_text(json.dumps({"scale": 1, "mask": "no"}))  # a field live does not take
        assert json.loads(ws.receive_text())["error"] == "bad_option"


def test_live_holds_a_fine_stroke_to_the_servers_longest_side(two_styles: tuple[str, str]) -> None:
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    settings = WebSettings(max_side=1024, live_max_side=640)
    with TestClient(create_app(device="cpu", settings=settings), base_url=LOCAL) as c, \
            c.websocket_connect(f"ws://localhost/api/live?style={two_styles[0]}") as ws:  # fmt: skip
        assert json.loads(ws.receive_text()) == {"style": two_styles[0]}
        ws.send_text(json.dumps({"scale": 0.5}))  # 640 px frames painted at 1280 px
        error = json.loads(ws.receive_text())
        assert error["error"] == "bad_option" and "at least 0.63" in error["message"]
        ws.send_text(json.dumps({"scale": 0.75}))
        assert json.loads(ws.receive_text()) == {"scale": 0.75}
