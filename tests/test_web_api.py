"""The web demo's JSON API, end to end over HTTP (Starlette's TestClient), against the real
local engine and the real built-in styles. Photos are scaled down so every call stays quick."""

from __future__ import annotations

import io
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from plugin_fixture.stylekit_fixture_plugin import models
from torch import nn

from sdk.cli import main as cli_main
from sdk.client import StyleClient
from sdk.package import InputContract, Manifest, write_package
from sdk.settings import user_styles_dir
from sdk.web.app import THUMBNAIL_SIDE, WebSettings, create_app
from sdk.web.sample import landscape

# The app answers to loopback names only (Host allow-list); TestClient's default is "testserver".
LOCAL = "http://localhost"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(device="cpu"), base_url=LOCAL) as c:
        yield c


@pytest.fixture(scope="module")
def styles(client: TestClient) -> list[dict[str, object]]:
    response = client.get("/api/styles")
    assert response.status_code == 200
    return list(response.json())


@pytest.fixture(scope="module")
def two_blendable(styles: list[dict[str, object]]) -> tuple[str, str]:
    multi = [s for s in styles if s["kind"] == "multistyle"]
    first = multi[0]
    partner = next(s for s in multi[1:] if s["blend_group"] == first["blend_group"])
    return str(first["name"]), str(partner["name"])


@pytest.fixture(scope="module")
def photo(content_images: list[Path]) -> bytes:
    """A 160x96 photo (not square, so a swapped width and height would show)."""
    with Image.open(next(p for p in content_images if p.stem == "chicago")) as im:
        return _png(im.convert("RGB").resize((160, 96)))


def _stylize(client: TestClient, photo: bytes, **data: str) -> tuple[int, bytes, dict[str, str]]:
    response = client.post("/api/stylize", files={"image": ("my photo.png", photo, "image/png")}, data=data)
    return response.status_code, response.content, dict(response.headers)


# -- listing and thumbnails -------------------------------------------------------------------


def test_styles_lists_the_built_ins(styles: list[dict[str, object]]) -> None:
    kinds = [s["kind"] for s in styles]
    assert kinds.count("multistyle") == 26
    assert kinds.count("arbitrary") == 1
    for style in styles:
        # The revision pins the model file: a rewritten package gets a new thumbnail URL.
        pattern = rf"/api/styles/{style['name']}/thumbnail\?v=[0-9a-f]{{12}}"
        assert re.fullmatch(pattern, style["thumbnail_url"])
        assert style["license"], style["name"]
    # The 26 sub-styles are one network, so any two of them blend.
    assert len({s["blend_group"] for s in styles if s["kind"] == "multistyle"}) == 1
    assert all(s["blend_group"] is None for s in styles if s["kind"] == "arbitrary")


def test_thumbnails_are_painted_by_each_style(client: TestClient, two_blendable: tuple[str, str]) -> None:
    a, b = two_blendable
    first = client.get(f"/api/styles/{a}/thumbnail")
    assert first.status_code == 200
    assert first.headers["content-type"] == "image/jpeg"
    img_a = _pixels(first.content)
    assert img_a.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3)
    img_b = _pixels(client.get(f"/api/styles/{b}/thumbnail").content)
    assert np.abs(img_a - img_b).mean() > 10, "two styles gave nearly the same thumbnail"
    # Cached: the same bytes again.
    assert client.get(f"/api/styles/{a}/thumbnail").content == first.content


def test_thumbnails_on_a_sample_photo_of_your_own(client: TestClient, content_images: list[Path],
                                                  two_blendable: tuple[str, str]) -> None:
    """``--sample PHOTO``: the thumbnail keeps the photo's aspect ratio, and shows the photo."""
    name = two_blendable[0]
    sample = next(p for p in content_images if p.stem == "hoovertowernight")  # 760x400
    with TestClient(create_app(device="cpu", settings=WebSettings(sample=sample)), base_url=LOCAL) as own:
        response = own.get(f"/api/styles/{name}/thumbnail")
    assert response.status_code == 200
    pixels = _pixels(response.content)
    assert pixels.shape == (round(THUMBNAIL_SIDE * 400 / 760), THUMBNAIL_SIDE, 3)
    default = _pixels(client.get(f"/api/styles/{name}/thumbnail").content)
    assert default.shape == (THUMBNAIL_SIDE, THUMBNAIL_SIDE, 3)


def test_thumbnail_of_the_arbitrary_style_is_the_painting_icon(client: TestClient) -> None:
    response = client.get("/api/styles/arbitrary/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in response.content


def test_thumbnail_of_an_unknown_style_is_404(client: TestClient) -> None:
    response = client.get("/api/styles/no-such-style/thumbnail")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_style"


def test_a_style_installed_while_the_app_runs(photo: bytes) -> None:
    """A package written to the user style folder after start (what `stylekit train` does when
    it finishes) shows in the gallery and paints; once removed it is gone and unknown."""
    with TestClient(create_app(device="cpu"), base_url=LOCAL) as running:
        assert "my-negative" not in {s["name"] for s in running.get("/api/styles").json()}
        models.write_negative(user_styles_dir(), "my-negative")

        listed = {s["name"]: s for s in running.get("/api/styles").json()}
        assert listed["my-negative"]["kind"] == "feedforward"
        assert listed["my-negative"]["license"] == "CC0-1.0"
        thumbnail = running.get(listed["my-negative"]["thumbnail_url"])
        assert thumbnail.status_code == 200 and thumbnail.headers["content-type"] == "image/jpeg"
        negative_sample = 255.0 - landscape(THUMBNAIL_SIDE)
        assert np.abs(_pixels(thumbnail.content) - negative_sample).mean() < 4  # JPEG's loss
        status, body, _ = _stylize(running, photo, style="my-negative")
        assert status == 200
        assert np.abs(_pixels(body) - (255.0 - _pixels(photo))).max() <= 1

        # Retrained under the same name: a new revision, a new thumbnail, the new painting.
        write_package(
            torch.jit.script(nn.Identity()),
            user_styles_dir(),
            Manifest(name="my-negative", kind="feedforward", model_file="my-negative.pt",
                     input=InputContract(multiple=1), source=dict(models.SOURCE)),
        )  # fmt: skip
        relisted = {s["name"]: s for s in running.get("/api/styles").json()}["my-negative"]
        assert relisted["thumbnail_url"] != listed["my-negative"]["thumbnail_url"]
        for url in (relisted["thumbnail_url"], listed["my-negative"]["thumbnail_url"]):
            # Also the old URL, which a page loaded before the rewrite still holds.
            assert np.abs(_pixels(running.get(url).content) - landscape(THUMBNAIL_SIDE)).mean() < 4
        status, body, _ = _stylize(running, photo, style="my-negative")
        assert status == 200 and np.abs(_pixels(body) - _pixels(photo)).max() <= 1

        for suffix in (".json", ".pt"):
            (user_styles_dir() / f"my-negative{suffix}").unlink()
        assert running.get(relisted["thumbnail_url"]).status_code == 404
        assert "my-negative" not in {s["name"] for s in running.get("/api/styles").json()}
        status, body, _ = _stylize(running, photo, style="my-negative")
        assert status == 404 and json.loads(body)["error"] == "unknown_style"


# -- stylize ----------------------------------------------------------------------------------


def test_stylize_png(client: TestClient, photo: bytes, two_blendable: tuple[str, str]) -> None:
    style = two_blendable[0]
    status, body, headers = _stylize(client, photo, style=style, max_side="80")
    assert status == 200, body
    assert headers["content-type"] == "image/png"
    assert headers["content-disposition"] == f'attachment; filename="my-photo-{style}.png"'
    result = _pixels(body)
    assert result.shape == (48, 80, 3)
    original = np.asarray(Image.open(io.BytesIO(photo)).resize((80, 48)), dtype=np.float64)
    assert np.abs(result - original).mean() > 10, "the result looks like the photo"


def test_stylize_jpeg_full_size(client: TestClient, photo: bytes, two_blendable: tuple[str, str]) -> None:
    status, body, headers = _stylize(client, photo, style=two_blendable[1], format="jpeg")
    assert status == 200, body
    assert headers["content-type"] == "image/jpeg"
    assert headers["content-disposition"].endswith(f'-{two_blendable[1]}.jpg"')
    assert Image.open(io.BytesIO(body)).format == "JPEG"
    assert _pixels(body).shape == (96, 160, 3)


def test_strength_zero_gives_the_photo_back(client: TestClient, photo: bytes,
                                            two_blendable: tuple[str, str]) -> None:
    status, body, _ = _stylize(client, photo, style=two_blendable[0], strength="0")
    assert status == 200, body
    assert np.abs(_pixels(body) - _pixels(photo)).max() <= 1


def test_preserve_color_keeps_the_photos_colours(client: TestClient, photo: bytes,
                                                 two_blendable: tuple[str, str]) -> None:
    def chroma(pixels: np.ndarray) -> np.ndarray:
        ycbcr = Image.fromarray(pixels.astype(np.uint8)).convert("YCbCr")
        return np.asarray(ycbcr, dtype=np.float64)[..., 1:]

    plain = _pixels(_stylize(client, photo, style=two_blendable[0])[1])
    kept = _pixels(_stylize(client, photo, style=two_blendable[0], preserve_color="true")[1])
    original = _pixels(photo)
    kept_error = np.abs(chroma(kept) - chroma(original)).mean()
    assert kept_error < np.abs(chroma(plain) - chroma(original)).mean() / 2


def test_blend_of_two_styles(client: TestClient, photo: bytes, two_blendable: tuple[str, str]) -> None:
    a, b = two_blendable
    only_a = _pixels(_stylize(client, photo, style=a)[1])
    only_b = _pixels(_stylize(client, photo, style=b)[1])
    status, body, headers = _stylize(client, photo, style=f"{a}=0.5,{b}=0.5")
    assert status == 200, body
    assert headers["content-disposition"].endswith(f'my-photo-{a}-{b}.png"')
    mixed = _pixels(body)
    assert mixed.shape == only_a.shape
    assert np.abs(mixed - only_a).mean() > 2 and np.abs(mixed - only_b).mean() > 2


def test_any_painting_mode(client: TestClient, photo: bytes, style_images: list[Path]) -> None:
    results = []
    for painting in style_images[:2]:
        with Image.open(painting) as im:
            painting_bytes = _png(im.convert("RGB").resize((128, 128)))
        response = client.post(
            "/api/stylize",
            files={
                "image": ("photo.png", photo, "image/png"),
                "style_image": (painting.name, painting_bytes, "image/png"),
            },
            data={"max_side": "96"},
        )
        assert response.status_code == 200, response.text
        slug = painting.stem.replace("_", "-")  # file names are lowercase words and dashes
        assert response.headers["content-disposition"] == f'attachment; filename="photo-{slug}.png"'
        results.append(_pixels(response.content))
    assert results[0].shape == (round(96 * 96 / 160), 96, 3)
    assert np.abs(results[0] - results[1]).mean() > 5, "two paintings gave the same result"


def test_any_painting_without_a_painting_is_400(client: TestClient, photo: bytes) -> None:
    status, body, _ = _stylize(client, photo, style="arbitrary")
    assert status == 400
    assert b"bad_option" in body


# -- bad requests -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        ({"style": "no-such-style"}, 404, "unknown_style"),
        ({"style": "{a}", "strength": "2"}, 400, "bad_option"),
        ({"style": "{a}", "strength": "strong"}, 400, "bad_option"),
        ({"style": "{a}", "format": "gif"}, 400, "bad_option"),
        ({"style": "{a}", "max_side": "0"}, 400, "bad_option"),
        ({"style": "{a}", "preserve_color": "maybe"}, 400, "bad_option"),
        ({"style": "{a}=x,{b}=1"}, 400, "bad_option"),
        ({}, 400, "bad_option"),
    ],
)
def test_bad_options(client: TestClient, photo: bytes, two_blendable: tuple[str, str],
                     data: dict[str, str], status: int, code: str) -> None:
    a, b = two_blendable
    filled = {k: v.format(a=a, b=b) for k, v in data.items()}
    got, body, _ = _stylize(client, photo, **filled)
    assert got == status, body
    error = json.loads(body)
    assert error["error"] == code and error["status"] == status and error["message"]


def test_unknown_style_suggests_a_close_name(client: TestClient, photo: bytes,
                                             two_blendable: tuple[str, str]) -> None:
    name = two_blendable[0]
    status, body, _ = _stylize(client, photo, style=name[:-1])
    assert status == 404
    assert name in body.decode()


def test_non_image_is_400(client: TestClient, two_blendable: tuple[str, str]) -> None:
    response = client.post(
        "/api/stylize",
        files={"image": ("photo.png", b"this is not a picture at all", "image/png")},
        data={"style": two_blendable[0]},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_image"


def test_truncated_image_is_400(client: TestClient, photo: bytes, two_blendable: tuple[str, str]) -> None:
    status, body, _ = _stylize(client, photo[: len(photo) // 2], style=two_blendable[0])
    assert status == 400, body


def test_text_file_is_415(client: TestClient, two_blendable: tuple[str, str]) -> None:
    response = client.post(
        "/api/stylize",
        files={"image": ("notes.txt", b"shopping list", "text/plain")},
        data={"style": two_blendable[0]},
    )
    assert response.status_code == 415
    assert "not an image" in response.json()["message"]


def test_a_body_that_is_not_a_form_is_415(client: TestClient) -> None:
    response = client.post("/api/stylize", json={"style": "x"})
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"


def test_missing_photo_is_400(client: TestClient, two_blendable: tuple[str, str]) -> None:
    response = client.post("/api/stylize", files={"other": ("x.png", b"x", "image/png")},
                           data={"style": two_blendable[0]})
    assert response.status_code == 400
    assert "photo" in response.json()["message"]


@pytest.fixture(scope="module")
def small_limit_client() -> Iterator[TestClient]:
    small = WebSettings(max_upload_bytes=100_000)
    with TestClient(create_app(device="cpu", settings=small), base_url=LOCAL) as c:
        yield c


def test_too_large_upload_is_413(small_limit_client: TestClient, two_blendable: tuple[str, str]) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    big = _png(Image.fromarray(noise))  # incompressible: ~270 KB
    assert len(big) > 200_000
    response = small_limit_client.post(
        "/api/stylize", files={"image": ("big.png", big, "image/png")}, data={"style": two_blendable[0]}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "image_too_large"
    assert "MB" in response.json()["message"] or "KB" in response.json()["message"]


def test_too_large_streamed_upload_is_413_while_reading(small_limit_client: TestClient) -> None:
    """No Content-Length (chunked): the limit is enforced on the bytes as they arrive."""
    boundary = "stylekitboundary"

    def body() -> Iterator[bytes]:
        yield (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n'
               "Content-Type: image/png\r\n\r\n").encode()
        for _ in range(100):
            yield b"\0" * 10_000  # 1 MB in all, ten times the limit

    response = small_limit_client.post(
        "/api/stylize", content=body(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 413


def test_image_over_the_pixel_limit_is_413(monkeypatch: pytest.MonkeyPatch, photo: bytes,
                                           two_blendable: tuple[str, str]) -> None:
    monkeypatch.setenv("STYLEKIT_MAX_PIXELS", "10000")  # the photo has 160 x 96 = 15360
    with TestClient(create_app(device="cpu"), base_url=LOCAL) as c:
        response = c.post("/api/stylize", files={"image": ("p.png", photo, "image/png")},
                          data={"style": two_blendable[0]})
    assert response.status_code == 413
    assert response.json()["error"] == "image_too_large"


def test_info_and_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "backend": "local"}
    info = client.get("/api/info").json()
    assert info["backend"] == "local" and info["max_upload_bytes"] == 20 * 2**20
    assert info["formats"] == ["png", "jpeg"]


def test_page_and_openapi(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg"):
        assert client.get(asset).status_code == 200, asset
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) >= {"/api/styles", "/api/styles/{name}/thumbnail", "/api/stylize", "/healthz"}
    body = schema["paths"]["/api/stylize"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["image"] and "style_image" in body["properties"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sample", "/no/such/photo.jpg"], "is not a file"),
        (["--max-upload-mb", "0"], "--max-upload-mb must be a number from 0.001 to 4096, not '0'"),
        (["--max-side", "+7"], "--max-side must be a whole number from 1 to 20000, not '+7'"),
        (["--port", "٣"], "--port must be a whole number from 0 to 65535"),
        (["--server", "http://127.0.0.1:9", "--device", "cpu"], "--device applies"),
    ],
)
def test_cli_refuses_bad_options(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["web", *args]) == 2
    assert message in capsys.readouterr().err


# -- a style server that is down ---------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_down_gives_503_with_a_readable_message(photo: bytes, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    backend = StyleClient(url, token="unused", retries=0, timeout=5, run_dir=tmp_path)
    with TestClient(create_app(backend), base_url=LOCAL) as c:
        assert c.get("/healthz").status_code == 503
        listing = c.get("/api/styles")
        assert listing.status_code == 503
        response = c.post("/api/stylize", files={"image": ("p.png", photo, "image/png")}, data={"style": "x"})
        assert response.status_code == 503
        error = response.json()
        assert error["error"] == "server_unavailable" and error["status"] == 503
        assert error["message"]
