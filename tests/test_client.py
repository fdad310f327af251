"""StyleClient without a TorchServe: configuration, token discovery, error mapping, metrics parsing.

Everything that needs a real server (stylizing, retries after a worker dies, auth refusal)
is in ``test_serving.py``.
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from sdk.client import RetryTransport, StyleClient, _error_from_response, parse_prometheus
from sdk.errors import (
    AuthenticationError,
    BadOptionError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidMaskError,
    ServerError,
    ServerUnavailableError,
    StylekitError,
    UnknownStyleError,
)
from sdk.serving.state import ServerState


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_server_files(run_dir: Path, port: int) -> ServerState:
    """A state file and a key file laid out as ``stylekit serve start`` and TorchServe write them."""
    run_dir.mkdir(parents=True)
    state = ServerState(
        pid=1,
        run_dir=str(run_dir),
        inference_url=f"http://127.0.0.1:{port}",
        management_url=f"http://127.0.0.1:{port + 10}",
        metrics_url=f"http://127.0.0.1:{port + 20}",
        model_store=str(run_dir),
    )
    state.save()
    keys = {
        "management": {"key": "mgmt-key", "expiration time": "2026-11-25T18:00:00Z"},
        "inference": {"key": "infer-key", "expiration time": "2026-11-25T18:00:00Z"},
        "API": {"key": "api-key"},
    }
    (run_dir / "key_file.json").write_text(json.dumps(keys), encoding="utf-8")
    return state


def _response(status: int, body: object, url: str = "http://127.0.0.1:1/predictions/x") -> httpx.Response:
    return httpx.Response(status, json=body, request=httpx.Request("POST", url))


def test_no_arguments_finds_the_served_state_and_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("STYLEKIT_TOKEN", raising=False)
    monkeypatch.delenv("STYLEKIT_SERVER", raising=False)
    _write_server_files(tmp_path / "serve", 18555)
    client = StyleClient()
    assert client.url == "http://127.0.0.1:18555"
    assert client.management_url == "http://127.0.0.1:18565"
    assert client.metrics_url == "http://127.0.0.1:18575"
    assert client._auth(management=False) == {"Authorization": "Bearer infer-key"}
    assert client._auth(management=True) == {"Authorization": "Bearer mgmt-key"}


def test_explicit_token_and_env_win_over_the_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path))
    _write_server_files(tmp_path / "serve", 18556)
    monkeypatch.setenv("STYLEKIT_TOKEN", "from-env")
    assert StyleClient()._auth(management=False) == {"Authorization": "Bearer from-env"}
    assert StyleClient(token="given")._auth(management=False) == {"Authorization": "Bearer given"}


def test_other_url_derives_management_and_metrics_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("STYLEKIT_TOKEN", raising=False)
    client = StyleClient("http://127.0.0.1:9080/", token="t")
    assert (client.url, client.management_url, client.metrics_url) == (
        "http://127.0.0.1:9080",
        "http://127.0.0.1:9081",
        "http://127.0.0.1:9082",
    )
    # A management token defaults to the inference token when nothing else names one.
    assert client._auth(management=True) == {"Authorization": "Bearer t"}


def test_no_server_anywhere_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path))
    monkeypatch.delenv("STYLEKIT_SERVER", raising=False)
    with pytest.raises(ServerUnavailableError, match="stylekit serve start"):
        StyleClient()


def test_connection_refused_is_server_unavailable_after_retries(photos: list[Path]) -> None:
    client = StyleClient(f"http://127.0.0.1:{_free_port()}", token="t", retries=2, backoff=0.0)
    with pytest.raises(ServerUnavailableError, match="Cannot reach"):
        client.stylize(photos[0], "model:style")
    with pytest.raises(ServerUnavailableError):
        client.health()


def test_option_errors_are_raised_before_any_request(photos: list[Path]) -> None:
    client = StyleClient(f"http://127.0.0.1:{_free_port()}", token="t", retries=0)
    with pytest.raises(BadOptionError, match="format"):
        client.stylize(photos[0], "a:b", format="TIFF")
    with pytest.raises(BadOptionError, match="package file"):
        client.stylize(photos[0], "my_style.pt")
    with pytest.raises(BadOptionError, match="different models"):
        client.stylize(photos[0], {"net1:a": 0.5, "net2:b": 0.5})
    with pytest.raises(InvalidImageError, match="Cannot read"):
        client.stylize(Path("/nonexistent/photo.jpg"), "a:b")
    with pytest.raises(BadOptionError):
        StyleClient("http://127.0.0.1:1", token="t", retries=-1)


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (400, {"error": "invalid_image", "message": "corrupt", "status": 400}, InvalidImageError, "corrupt"),
        (400, {"error": "invalid_mask", "message": "aspect", "status": 400}, InvalidMaskError, "aspect"),
        (400, {"error": "bad_option", "message": "strength", "status": 400}, BadOptionError, "strength"),
        (404, {"error": "unknown_style", "message": "no such", "status": 404}, UnknownStyleError, "no such"),
        (413, {"error": "image_too_large", "message": "pixels", "status": 413}, ImageTooLargeError, "pixels"),
        (400, {"code": 400, "type": "InvalidKeyException", "message": "Token"}, AuthenticationError, "Token"),
        (
            404,
            {"code": 404, "type": "ModelNotFoundException", "message": "Model not found"},
            UnknownStyleError,
            "",
        ),
        (
            413,
            {"code": 413, "type": "TooLongFrameException", "message": "too big"},
            ImageTooLargeError,
            "too big",
        ),
        (
            503,
            {"code": 503, "type": "ServiceUnavailableException", "message": "busy"},
            ServerUnavailableError,
            "",
        ),
        (
            500,
            {"code": 500, "type": "InternalServerException", "message": "Worker died."},
            ServerUnavailableError,
            "",
        ),
        (500, {"error": "internal_error", "message": "boom", "status": 500}, ServerError, "boom"),
    ],
)
def test_server_answers_map_to_the_error_family(
    status: int, body: object, expected: type[Exception], message: str
) -> None:
    error = _error_from_response(_response(status, body))
    assert type(error) is expected
    assert message in error.message


def test_prometheus_text_is_parsed_with_labels() -> None:
    text = "\n".join(
        [
            "# HELP ts_inference_requests_total Total number of inference requests.",
            "# TYPE ts_inference_requests_total counter",
            'ts_inference_requests_total{model_name="multistyle26",model_version="default",hostname="h"} 12',
            'ts_queue_latency_microseconds{model_name="a",model_version="default",hostname="h"} 1.5e3',
            'odd_label{path="a \\"quoted\\" value"} 1',
            "up 1",
            "",
        ]
    )
    metrics = parse_prometheus(text)
    assert metrics["ts_inference_requests_total"] == [
        {"labels": {"model_name": "multistyle26", "model_version": "default", "hostname": "h"}, "value": 12.0}
    ]
    assert metrics["ts_queue_latency_microseconds"][0]["value"] == 1500.0
    assert metrics["odd_label"][0]["labels"] == {"path": 'a "quoted" value'}
    assert metrics["up"] == [{"labels": {}, "value": 1.0}]


def test_importing_the_client_does_not_import_torch() -> None:
    # The client decodes and encodes through sdk.imaging; that part must stay torch-free too.
    code = (
        "import sys, sdk, numpy as np\n"
        "from sdk import imaging\n"
        "from sdk.client import StyleClient\n"
        "StyleClient('http://127.0.0.1:1', token='t')\n"
        "d = imaging.decode(np.zeros((8, 8, 4), np.uint8))\n"
        "assert imaging.encode(imaging.finish(d.rgb, d), 'PNG')[:4] == b'\\x89PNG'\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_remote_client_never_reads_local_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path))
    (tmp_path / "serve").mkdir()
    (tmp_path / "serve" / "state.json").write_text("{corrupt", encoding="utf-8")
    client = StyleClient("http://remote.example:8080", token="t")
    assert client._auth(management=False) == {"Authorization": "Bearer t"}
    # Without a token the local state is looked at, but a corrupt one cannot stop a remote client.
    monkeypatch.delenv("STYLEKIT_TOKEN", raising=False)
    assert StyleClient("http://remote.example:8080").url == "http://remote.example:8080"
    # With nothing given, the state file is the only way to a server: then it is an error.
    monkeypatch.delenv("STYLEKIT_SERVER", raising=False)
    with pytest.raises(ServerError, match="Unreadable server state file"):
        StyleClient()


def test_the_client_does_not_import_the_server_launcher() -> None:
    code = (
        "import sys\n"
        "from sdk.client import StyleClient\n"
        "StyleClient('http://127.0.0.1:1', token='t')\n"
        "StyleClient('http://127.0.0.1:1')\n"
        "launcher = ('sdk.serving.server', 'sdk.serving.archive', 'handlers')\n"
        "print(sorted(m for m in sys.modules if m.startswith(launcher)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# -- retries and key renewal, on httpx.MockTransport (no server, no sleeping) -------------------


def _mock_client(handler: Any, tmp_path: Path, **kwargs: Any) -> StyleClient:
    return StyleClient("http://ts.test:8080", token="t", transport=httpx.MockTransport(handler),
                       run_dir=tmp_path, backoff=0.0, **kwargs)  # fmt: skip


def test_the_transport_retries_what_a_restart_costs(tmp_path: Path) -> None:
    answers = [
        httpx.Response(503, json={"code": 503, "message": "no worker"}),
        httpx.Response(500, json={"code": 500, "type": "InternalServerException", "message": "Worker died."}),
        httpx.Response(507, json={"code": 507, "message": "Worker died."}),
        httpx.Response(200, json={"status": "Healthy"}),
    ]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return answers[len(seen) - 1]

    response = _mock_client(handler, tmp_path, retries=3)._request("GET", "http://ts.test:8080/x")
    assert response.status_code == 200
    assert seen == ["Bearer t"] * 4


def test_the_transport_gives_up_and_says_so(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"message": "busy"})

    with pytest.raises(ServerUnavailableError) as err:
        _mock_client(handler, tmp_path, retries=2)._request("GET", "http://ts.test:8080/x")
    assert len(calls) == 3 and err.value.http_status == 503


@pytest.mark.parametrize("status", [400, 404, 413])
def test_client_errors_are_not_retried(tmp_path: Path, status: int) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json={"error": "bad_option", "message": "no", "status": status})

    with pytest.raises(StylekitError):
        _mock_client(handler, tmp_path, retries=3)._request("GET", "http://ts.test:8080/x")
    assert len(calls) == 1


def test_calls_that_change_the_server_are_sent_once(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"message": "busy"})

    with pytest.raises(ServerUnavailableError):
        _mock_client(handler, tmp_path, retries=3)._request("POST", "http://ts.test:8081/models", retry=False)
    assert len(calls) == 1


def test_backoff_doubles_with_jitter_and_honours_retry_after() -> None:
    waits: list[float] = []
    answers = iter([
        httpx.Response(503), httpx.Response(503), httpx.Response(503, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "3600"}), httpx.Response(200),
    ])  # fmt: skip
    transport = RetryTransport(httpx.MockTransport(lambda _: next(answers)), retries=4, backoff=1.0,
                               sleep=waits.append, rng=lambda: 0.25)  # fmt: skip
    with httpx.Client(transport=transport) as http:
        assert http.get("http://ts.test/x").status_code == 200
    # 1 s then 2 s, each times 0.75 (the jitter drawn), then the server's 7 s, capped at 30 s.
    assert waits == [0.75, 1.5, 7.0, RetryTransport.max_delay]


def test_refused_connections_are_retried_then_reported(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServerUnavailableError, match="Cannot reach the style server"):
        _mock_client(handler, tmp_path, retries=2)._request("GET", "http://ts.test:8080/x")
    assert len(calls) == 3


def test_an_expired_key_file_key_is_renewed_once_and_the_request_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STYLEKIT_TOKEN", raising=False)
    state = _write_server_files(tmp_path / "serve", 18600)
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.headers.get("authorization", "")))
        if request.url.path == "/token":  # TorchServe's token API writes new keys into the file
            keys = json.loads(Path(state.key_file).read_text())
            keys["inference"]["key"] = "fresh-key"
            Path(state.key_file).write_text(json.dumps(keys))
            return httpx.Response(200, json={})
        if request.headers.get("authorization") == "Bearer fresh-key":
            return httpx.Response(200, json={"status": "Healthy"})
        return httpx.Response(400, json={"code": 400, "type": "InvalidKeyException", "message": "expired"})

    mock = httpx.MockTransport(handler)
    client = StyleClient(state.inference_url, transport=mock, run_dir=tmp_path / "serve")
    assert client.health() == {"status": "Healthy"}
    assert seen == [("/ping", "Bearer infer-key"), ("/token", "Bearer api-key"),
                    ("/ping", "Bearer fresh-key")]  # fmt: skip


def test_an_explicit_token_that_is_refused_is_not_renewed(tmp_path: Path) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(400, json={"code": 400, "type": "InvalidKeyException", "message": "bad key"})

    with pytest.raises(AuthenticationError):
        _mock_client(handler, tmp_path).health()
    assert calls == ["/ping"]


# -- routing style, outside and the mask (httpx.MockTransport, no server) -------------------------


def _catalog_server(posts: list[httpx.Request]) -> Any:
    """A TorchServe as the client sees it: two models, ``net`` (sub-styles a, b; alias ay)
    and ``solo``; predictions answer a 2x2 PNG and are recorded in ``posts``."""
    from PIL import Image

    from sdk import imaging

    net = [{"name": "a", "aliases": ["ay"], "index": 0}, {"name": "b", "index": 1}]
    described = {
        "net": {"kind": "multistyle", "styles": net},
        "solo": {"kind": "feedforward", "styles": [{"name": "solo"}]},
    }
    answer = imaging.encode(Image.new("RGB", (2, 2)), "PNG")

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/models":
            return httpx.Response(200, json={"models": [{"modelName": m} for m in described]})
        if path.startswith("/models/"):
            return httpx.Response(200, json=[{"customizedMetadata": described[path.rsplit("/", 1)[1]]}])
        posts.append(request)
        return httpx.Response(200, content=answer, headers={"content-type": "image/png"})

    return handler


def _form(request: httpx.Request) -> dict[str, tuple[str | None, bytes]]:
    """A multipart/form-data body -> {field: (filename, bytes)}."""
    from email.parser import BytesParser
    from email.policy import HTTP

    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    parts: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        parts[str(part.get_param("name", header="content-disposition"))] = (part.get_filename(), payload)
    return parts


def test_scale_mask_and_outside_travel_to_the_model_serving_both(tmp_path: Path) -> None:
    posts: list[httpx.Request] = []
    client = _mock_client(_catalog_server(posts), tmp_path)
    mask = b"\x89PNG mask bytes, read by the server"
    client.stylize(b"photo", "ay", scale=2.0, mask=mask, outside={"b": 1, "a": 3}, format="PNG")
    [post] = posts
    assert post.url.path == "/predictions/net"
    form = _form(post)
    assert form["image"][1] == b"photo" and form["mask"] == ("mask", mask)
    assert form["style"][1] == b"ay" and form["scale"][1] == b"2.0"
    assert json.loads(form["outside"][1]) == {"b": 1.0, "a": 3.0}
    # scale=1 and no mask: nothing of either on the wire (the answer of before the options).
    client.stylize(b"photo", "net:b")
    assert posts[1].url.path == "/predictions/net"
    assert {"scale", "mask", "outside"}.isdisjoint(_form(posts[1]))


def test_outside_of_another_model_is_one_clear_error_before_any_upload(tmp_path: Path) -> None:
    posts: list[httpx.Request] = []
    client = _mock_client(_catalog_server(posts), tmp_path)
    with pytest.raises(BadOptionError, match=r"'net'.*'solo'.*one model"):
        client.stylize(b"photo", "a", mask=b"m", outside="solo")
    with pytest.raises(BadOptionError, match="different models"):
        client.stylize(b"photo", "a", mask=b"m", outside={"b": 0.5, "solo": 0.5})
    with pytest.raises(BadOptionError, match="give a mask too"):
        client.stylize(b"photo", "a", outside="b")
    with pytest.raises(BadOptionError, match=r"scale must be a number from 0\.25 to 8"):
        client.stylize(b"photo", "a", scale=0.0)
    with pytest.raises(BadOptionError, match="package file"):
        client.stylize(b"photo", "a", mask=b"m", outside="mine.pt")
    assert posts == []


def test_a_mask_in_memory_is_sent_as_the_engine_reads_it(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from sdk import imaging

    posts: list[httpx.Request] = []
    client = _mock_client(_catalog_server(posts), tmp_path)
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, 4:, 3] = 255  # left half transparent (the photo), right half opaque white (the style)
    rgba[0, 0] = (128, 128, 128, 255)
    masks = [Image.fromarray(rgba, "RGBA"), rgba, np.linspace(0, 255, 48).astype(np.uint8).reshape(6, 8)]
    for mask in masks:
        client.stylize(b"photo", "a", mask=mask)
        name, sent = _form(posts[-1])["mask"]
        assert name == "mask.png"
        got = Image.open(io.BytesIO(sent))
        assert got.mode == "L" and got.size == (8, 6)
        assert np.array_equal(np.asarray(got), imaging.read_mask(mask))


def test_stylize_many_sends_each_image_with_the_same_options(tmp_path: Path) -> None:
    posts: list[httpx.Request] = []
    client = _mock_client(_catalog_server(posts), tmp_path)
    results = list(client.stylize_many([b"one", b"two", b"three"], "a", concurrency=2, progress=False,
                                       scale=4.0, mask=io.BytesIO(b"mask file"), outside="b"))  # fmt: skip
    assert [r.ok for r in results] == [True] * 3
    forms = sorted((_form(p) for p in posts), key=lambda f: f["image"][1])
    assert [f["image"][1] for f in forms] == [b"one", b"three", b"two"]
    for form in forms:  # the open mask file was read once, and sent with every image
        assert (form["mask"][1], form["scale"][1], form["outside"][1]) == (b"mask file", b"4.0", b"b")
