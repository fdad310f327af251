"""Stroke size and regions (``scale``, ``mask``, ``outside``) end to end on a real TorchServe.

One server for the module (the ``served`` fixture: the built-in archives on loopback, batches
of up to 4 within 150 ms). Exact comparisons ask for PNG answers and send PNG photos, so
"the photo's pixels" and "the plain stylized result" are bytes the test knows.
"""

from __future__ import annotations

import base64
import io
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from torchserve_support import Served

import sdk
from sdk.errors import BadOptionError, InvalidMaskError, UnknownStyleError
from sdk.wire import StyleRequest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIZE = (240, 160)  # not square, so a mask's aspect ratio is checked for real


def _photo(path: Path, size: tuple[int, int] = SIZE) -> Image.Image:
    return Image.open(path).convert("RGB").resize(size, Image.Resampling.BILINEAR)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int32)


def _half_mask(size: tuple[int, int], left: int = 0, right: int = 255) -> Image.Image:
    """An "L" mask: ``left`` on the left half, ``right`` on the right half."""
    w, h = size
    value = np.full((h, w), left, np.uint8)
    value[:, w // 2 :] = right
    return Image.fromarray(value, "L")


def _post(served: Served, model: str = "multistyle26") -> Callable[..., httpx.Response]:
    """A raw multipart (or JSON) poster with the inference key, to see statuses and bodies."""
    token = served.state.tokens()["inference"]
    url = f"{served.state.inference_url}/predictions/{model}"

    def post(**kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return httpx.post(url, headers=headers, timeout=60, **kwargs)

    return post


def _image(answer: httpx.Response) -> Image.Image:
    assert answer.status_code == 200, answer.text
    return Image.open(io.BytesIO(answer.content))


def test_scale_one_is_the_plain_answer_and_two_paints_bigger_strokes(
    served: Served, photos: list[Path]
) -> None:
    client = served.client()
    style = served.substyles[3]
    photo = _photo(photos[0])
    plain = client.send(photo, StyleRequest(style))
    assert client.send(photo, StyleRequest(style, scale=1.0)) == plain
    post = _post(served)
    form = {"style": style, "scale": "1"}
    explicit = _image(post(files={"image": _png(photo)}, data=form))
    assert explicit.tobytes() == Image.open(io.BytesIO(plain)).tobytes()
    bigger = client.stylize(photo, style, scale=2.0)
    assert bigger.size == photo.size
    assert np.abs(_pixels(bigger) - _pixels(Image.open(io.BytesIO(plain)))).mean() > 2
    # The same call here gives the same picture (one engine, one rule).
    local = sdk.stylize(photo, style=style, scale=2.0, device="cpu")
    assert np.abs(_pixels(bigger) - _pixels(local)).max() <= 1
    # Smaller strokes (scale < 1) and the header form of the option.
    raw = post(content=_png(photo), headers={"Content-Type": "image/png", "X-Stylekit-Style": style,
                                              "X-Stylekit-Scale": "0.5"})  # fmt: skip
    assert _image(raw).size == photo.size


def test_a_half_mask_keeps_the_photo_exactly_and_styles_the_rest(served: Served, photos: list[Path]) -> None:
    client = served.client()
    style = served.substyles[5]
    photo = _photo(photos[1])
    w = SIZE[0] // 2
    plain = _pixels(client.stylize(photo, style))
    masked = _pixels(client.stylize(photo, style, mask=_png(_half_mask(SIZE)), format="PNG"))
    assert np.array_equal(masked[:, :w], _pixels(photo)[:, :w])  # black: the photo's own pixels
    assert np.array_equal(masked[:, w:], plain[:, w:])  # white: the plain stylized result
    # A mask of another size (same aspect ratio) is resized; transparency keeps the photo too.
    rgba = Image.new("RGBA", (SIZE[0] // 4, SIZE[1] // 4), (255, 255, 255, 255))
    rgba.paste((255, 255, 255, 0), (0, 0, rgba.width // 2, rgba.height))
    soft = _pixels(client.stylize(photo, style, mask=rgba))
    assert np.array_equal(soft[:, : w - 8], _pixels(photo)[:, : w - 8])
    assert np.array_equal(soft[:, w + 8 :], plain[:, w + 8 :])
    # Grey blends: between the photo and the style, not either.
    grey = _pixels(client.stylize(photo, style, mask=_half_mask(SIZE, 128, 128)))
    expected = (plain * 128 + _pixels(photo) * 127 + 127) // 255
    assert np.abs(grey - expected).max() <= 1


def test_outside_paints_the_black_part_in_a_second_substyle(served: Served, photos: list[Path]) -> None:
    client = served.client()
    inside, outside = served.substyles[2], served.substyles[9]
    photo = _photo(photos[2])
    w = SIZE[0] // 2
    mask = _half_mask(SIZE)
    got = _pixels(client.stylize(photo, inside, mask=mask, outside=outside))
    assert np.array_equal(got[:, :w], _pixels(client.stylize(photo, outside))[:, :w])
    assert np.array_equal(got[:, w:], _pixels(client.stylize(photo, inside))[:, w:])
    # A blend as outside, and the JSON form of the request (base64 image parts).
    blend = {served.substyles[0]: 0.5, served.substyles[1]: 0.5}
    body = {"image": base64.b64encode(_png(photo)).decode(), "mask": base64.b64encode(_png(mask)).decode(),
            "style": inside, "outside": blend, "scale": 2}  # fmt: skip
    answer = _image(_post(served)(json=body))
    local = sdk.stylize(photo, style=inside, mask=mask, outside=blend, scale=2.0, device="cpu")
    assert np.abs(_pixels(answer) - _pixels(local)).max() <= 1
    assert np.array_equal(_pixels(answer)[:, w:], _pixels(client.stylize(photo, inside, scale=2.0))[:, w:])
    # outside is a name of the model's package, like style.
    with pytest.raises(UnknownStyleError, match="no-such-style"):
        client.stylize(photo, inside, mask=mask, outside="multistyle26:no-such-style")


@pytest.mark.parametrize(
    ("mask", "match"),
    [
        (b"garbage, not an image", "The mask"),
        (b"", "The mask"),
        (_png(Image.new("L", (100, 100), 255)), "aspect ratio"),
    ],
    ids=["garbage", "empty", "aspect"],
)
def test_a_bad_mask_is_a_400_and_the_server_keeps_serving(
    served: Served, photos: list[Path], mask: bytes, match: str
) -> None:
    post = _post(served)
    style = served.substyles[4]
    photo = _png(_photo(photos[3]))
    answer = post(files={"image": ("photo.png", photo), "mask": ("mask.png", mask)}, data={"style": style})
    assert answer.status_code == 400 and answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["error"] == "invalid_mask" and match in body["message"]
    with pytest.raises(InvalidMaskError, match=match):
        served.client().stylize(photo, style, mask=mask)
    assert _image(post(files={"image": photo}, data={"style": style})).size == SIZE


@pytest.mark.parametrize(
    ("fields", "headers", "match"),
    [
        ({"outside": "x"}, {}, "give a mask too"),
        ({}, {"X-Stylekit-Outside": "x"}, "give a mask too"),
        ({"scale": "1e309"}, {}, "scale must be a number"),
        ({"scale": "nan"}, {}, "scale must be a number"),
        ({"scale": "0"}, {}, "scale must be a number"),
        ({}, {"X-Stylekit-Scale": "inf"}, "scale must be a number"),
    ],
)
def test_bad_scale_and_outside_without_mask_are_400(
    served: Served, photos: list[Path], fields: dict[str, str], headers: dict[str, str], match: str
) -> None:
    answer = _post(served)(files={"image": _png(_photo(photos[4]))}, headers=headers,
                           data={"style": served.substyles[0], **fields})  # fmt: skip
    assert answer.status_code == 400
    assert answer.json()["error"] == "bad_option" and match in answer.json()["message"]


def test_a_batch_keeps_each_requests_scale_mask_and_outside(served: Served, photos: list[Path]) -> None:
    """Requests batched together run apart when their options differ, and one photo the mask
    does not fit is answered alone (400) while its batch mate with the same mask succeeds."""
    style, other = served.substyles[6], served.substyles[7]
    photo = _png(_photo(photos[5]))
    square = _png(_photo(photos[6], (160, 160)))
    left, right = _png(_half_mask(SIZE)), _png(_half_mask(SIZE, 255, 0))
    requests: list[dict[str, Any]] = [
        {"files": {"image": photo}, "data": {"style": style}},
        {"files": {"image": photo, "mask": left}, "data": {"style": style}},
        {"files": {"image": photo, "mask": right}, "data": {"style": style}},
        {"files": {"image": photo, "mask": left}, "data": {"style": style, "outside": other}},
        {"files": {"image": photo}, "data": {"style": style, "scale": "2"}},
        {"files": {"image": square, "mask": left}, "data": {"style": style}},  # a mask of the wrong shape
        {"files": {"image": photo, "mask": left}, "data": {"style": style}},  # same mask, fits
    ]
    post = _post(served)
    alone = [post(**r) for r in requests]  # one by one: each its own batch
    mark = served.log_size()
    barrier = threading.Barrier(len(requests))

    def send(request: dict[str, Any]) -> httpx.Response:
        barrier.wait()
        return post(**request)

    with ThreadPoolExecutor(len(requests)) as pool:
        together = list(pool.map(send, requests))
    assert [a.status_code for a in alone] == [200, 200, 200, 200, 200, 400, 200]
    assert [a.status_code for a in together] == [a.status_code for a in alone]
    assert together[5].json()["error"] == "invalid_mask"
    for one, many in zip(alone, together, strict=True):
        if one.status_code == 200:
            assert many.content == one.content
    # The answers differ where their options do.
    assert len({a.content for a in alone[:5]}) == 5 and alone[6].content == alone[1].content
    assert max(served.batch_sizes(mark)) >= 2


def test_the_arbitrary_model_takes_a_mask_with_its_painting(
    served: Served, photos: list[Path], style_images: list[Path]
) -> None:
    client = served.client()
    photo = _photo(photos[7])
    painting = style_images[2]
    plain = _pixels(client.stylize(photo, "arbitrary", style_image=painting))
    got = _pixels(client.stylize(photo, "arbitrary", style_image=painting, mask=_half_mask(SIZE)))
    w = SIZE[0] // 2
    assert np.array_equal(got[:, :w], _pixels(photo)[:, :w]) and np.array_equal(got[:, w:], plain[:, w:])


def test_outside_must_be_served_by_the_model_of_style(served: Served, photos: list[Path]) -> None:
    mask = _half_mask(SIZE)
    with pytest.raises(BadOptionError, match=r"'multistyle26'.*'arbitrary'"):
        served.client().stylize(_photo(photos[8]), served.substyles[0], mask=mask, outside="arbitrary")


def test_the_cli_sends_scale_mask_and_outside_to_the_server(
    served: Served, photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sdk.cli import main

    tokens = served.state.tokens()  # what a user's shell would have for another machine's server
    monkeypatch.setenv("STYLEKIT_TOKEN", tokens["inference"])
    monkeypatch.setenv("STYLEKIT_MANAGEMENT_TOKEN", tokens["management"])
    inside, outside = served.substyles[2], served.substyles[9]
    photo = _photo(photos[4])
    photo.save(tmp_path / "photo.png")
    _half_mask((SIZE[0] // 2, SIZE[1] // 2)).save(tmp_path / "mask.png")  # a smaller mask, same shape
    out = tmp_path / "out.png"
    mask = str(tmp_path / "mask.png")
    args = ["stylize", str(tmp_path / "photo.png"), "-s", inside, "--server", served.state.inference_url,
            "--scale", "2", "--mask", mask, "--outside", outside, "-o", str(out)]  # fmt: skip
    rc = main(args)
    assert rc == 0
    local = sdk.stylize(photo, inside, scale=2.0, mask=tmp_path / "mask.png", outside=outside, device="cpu")
    assert np.abs(_pixels(Image.open(out)) - _pixels(local)).max() <= 1
