"""Hostile requests, one test per finding of the outside attack (issue "Hostile requests"), against
a real ``stylekit web`` (local engine, and in front of TorchServe) and a real TorchServe on
loopback. Raw sockets where the finding is about the wire itself (slow clients, keep-alive).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from test_hostile_corpus import KeptConnection, _multipart
from torchserve_support import Served
from web_support import WebServer

from sdk.package import Manifest, write_package
from sdk.styles import BUILTIN_DIR
from sdk.web.app import create_app
from sdk.web.guard import INTERNAL_ERROR

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")
STYLE = "starry-night"


class _Boom(torch.nn.Module):
    """A user's style that fails inside TorchScript for images wider than 200 px: an unforeseen error."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] > 200:
            raise RuntimeError("boom inside the generator")
        return x


def _png(size: tuple[int, int], colour: tuple[int, int, int] = (200, 120, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(content_images: list[Path]) -> bytes:
    return content_images[0].read_bytes()


@pytest.fixture(scope="module")
def web_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hostile_home")
    boom = Manifest(name="boom", kind="feedforward", model_file="boom.pt", description="fails on big images")
    write_package(torch.jit.script(_Boom()), home / "styles", boom)
    # A package whose model file is not TorchScript: a package error, whose message names files.
    broken = Manifest(name="broken", kind="feedforward", model_file="broken.pt")
    write_package(torch.jit.script(_Boom()), home / "styles", broken)
    (home / "styles" / "broken.pt").write_bytes(b"not a model")
    return home


@pytest.fixture(scope="module")
def web(web_home: Path) -> Iterator[WebServer]:
    server = WebServer(web_home, "--device", "cpu", "--max-side", "4000", "--body-timeout", "2",
                       "--header-timeout", "2", "--allow-host", "stylekit.example")  # fmt: skip
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ts_web(served: Served) -> Iterator[WebServer]:
    # STYLEKIT_HOME=served.home: the web app's StyleClient finds that server's token file.
    server = WebServer(served.home, "--server", served.state.inference_url, "--max-side", "4000")
    yield server
    server.stop()


def _post(url: str, image: bytes, **fields: str) -> httpx.Response:
    files = {"image": ("photo.png", image, "image/png")}
    painting = fields.pop("style_image", None)
    if painting is not None:
        files["style_image"] = ("painting.png", painting.encode("latin-1"), "image/png")
    return httpx.post(f"{url}/api/stylize", files=files, data=fields, timeout=120)


def _until(call: Callable[[], T], done: Callable[[T], bool], seconds: float = 60) -> T:
    """``call()`` again until ``done`` (at most ``seconds``): an outcome, whatever the machine's load."""
    deadline = time.monotonic() + seconds
    while True:
        result = call()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def _no_server_paths(text: str, *extra: Path) -> None:
    home = str(Path.home())
    for path in (str(REPO), "site-packages", *(str(p) for p in extra), *([home] if home != "/" else [])):
        assert path not in text, f"{path} in {text[:300]}"


# -- 1. a style named in a request is never a file ---------------------------------------------


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of a built-in package somewhere on the host (it loaded and ran before the fix)."""
    folder = tmp_path_factory.mktemp("elsewhere")
    for suffix in (".json", ".pt"):
        shutil.copy(BUILTIN_DIR / f"arbitrary{suffix}", folder / f"arbitrary{suffix}")
    return folder


def _path_styles(folder: Path) -> list[str]:
    return [
        str(folder / "arbitrary.json"), str(folder / "arbitrary.pt"), str(folder), "/etc/passwd",
        "/nonexistent/x.pt", "~/.bashrc", f"multistyle26:{folder / 'arbitrary.json'}",
        "../../etc/passwd.json",
        f"{folder / 'arbitrary.json'}=1",
    ]  # fmt: skip


@pytest.mark.parametrize("which", ["web", "ts_web"])
def test_a_style_in_a_web_request_is_never_a_file(which: str, request: pytest.FixtureRequest,
                                                  package_copy: Path, photo: bytes) -> None:  # fmt: skip
    server: WebServer = request.getfixturevalue(which)
    painting = _png((64, 64)).decode("latin-1")
    messages = {}
    for style in _path_styles(package_copy):
        resp = _post(server.url, photo, style=style, style_image=painting)
        assert resp.status_code == 404, (style, resp.text)
        body = resp.json()
        assert body["error"] == "unknown_style" and body["status"] == 404
        # The message quotes the request's own style back (clipped); the rest names nothing here.
        messages[style] = re.sub(r"^Unknown style .*?(?=; GET|\. Did)", "Unknown style <style>",
                                 body["message"])  # fmt: skip
        _no_server_paths(messages[style], package_copy)
    # A file that exists and one that does not answer alike: no oracle for the server's disk.
    existing, absent = str(package_copy / "arbitrary.json"), str(package_copy / "arbitrary.pt")
    assert messages[existing] == messages[absent] == messages["/nonexistent/x.pt"]


def test_a_style_in_a_torchserve_request_is_never_a_file(served: Served, package_copy: Path) -> None:
    url = f"{served.state.inference_url}/predictions/arbitrary"
    auth = {"Authorization": f"Bearer {served.state.tokens()['inference']}"}
    image, painting = _png((64, 64)), base64.b64encode(_png((64, 64))).decode()
    for style in _path_styles(package_copy):
        as_json = httpx.post(url, json={"image": base64.b64encode(image).decode(), "style": style,
                                        "style_image": painting}, headers=auth, timeout=60)  # fmt: skip
        as_form = httpx.post(url, files={"image": ("p.png", image), "style_image": ("s.png", _png((64, 64)))},
                             data={"style": style}, headers=auth, timeout=60)  # fmt: skip
        answers = [as_json, as_form]
        if style.isascii():
            answers.append(httpx.post(url, content=image, timeout=60, headers={
                **auth, "Content-Type": "image/png", "X-Stylekit-Style": style}))  # fmt: skip
        for resp in answers:
            assert resp.status_code in (400, 404), (style, resp.text)
            assert resp.json()["error"] in ("unknown_style", "bad_option"), resp.text
            _no_server_paths(resp.text.replace(json.dumps(style)[1:-1], "<style>"), package_copy)


# -- 2. tiny and extreme images ---------------------------------------------------------------


TINY = [(1, 1), (3, 5), (4000, 16), (16, 4000)]


@pytest.mark.parametrize("which", ["web", "ts_web"])
def test_tiny_images_come_back_at_their_own_size_from_the_web(which: str, request: pytest.FixtureRequest,
                                                              photo: bytes) -> None:  # fmt: skip
    server: WebServer = request.getfixturevalue(which)
    for size in TINY:
        resp = _post(server.url, _png(size), style=STYLE)
        assert resp.status_code == 200, resp.text
        assert Image.open(io.BytesIO(resp.content)).size == size
    for side in range(1, 9):  # a normal photo scaled to a tiny one
        resp = _post(server.url, photo, style=STYLE, max_side=str(side))
        assert resp.status_code == 200 and max(Image.open(io.BytesIO(resp.content)).size) == side


def test_tiny_images_come_back_at_their_own_size_from_torchserve(served: Served) -> None:
    with served.client() as client:
        for size in TINY:
            assert client.stylize(_png(size), STYLE).size == size
        for side in (1, 3, 8):
            assert max(client.stylize(_png((300, 200)), STYLE, max_side=side).size) == side


def test_the_cli_stylizes_a_3x5_image(tmp_path: Path) -> None:
    (tmp_path / "tiny_3x5.png").write_bytes(_png((3, 5)))
    cmd = [sys.executable, "-m", "sdk.cli", "stylize", "tiny_3x5.png", "-s", STYLE, "-o", "o.png"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "o.png").size == (3, 5)


def test_an_unforeseen_error_in_the_cli_is_one_line(web_home: Path, tmp_path: Path) -> None:
    (tmp_path / "wide.png").write_bytes(_png((300, 40)))
    cmd = [sys.executable, "-m", "sdk.cli", "stylize", "wide.png", "-s", "boom", "-o", "o.png"]
    env = {**os.environ, "STYLEKIT_HOME": str(web_home)}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.splitlines()  # TorchScript's message runs to a dozen lines
    assert line.startswith("stylekit: error: unexpected ") and "stylekit -vv stylize" in line


# -- 3. an unforeseen error is a JSON 500 and costs no connection -------------------------------


def test_an_unforeseen_error_is_a_json_500_and_the_connection_lives(web: WebServer, photo: bytes) -> None:
    conn = KeptConnection("127.0.0.1", web.port)
    record = "ERROR sdk.web.guard: POST /api/stylize failed"
    before = web.log_text().count(record)
    for style in ("boom", "broken"):
        out = conn.post("/api/stylize", photo, {"style": style})
        assert out.status == 500 and out.message == INTERNAL_ERROR
        # The next request on the same socket is answered (KeptConnection checks the socket).
        assert conn.post("/api/stylize", photo, {"style": STYLE, "max_side": "64"}).status == 200
    time.sleep(0.5)  # let the log reach the file
    # The generator's error is logged once, with its traceback; the broken package's in one line.
    assert web.log_text().count(record) == before + 1


# -- 4. TorchServe: a bad number fails only its own item -------------------------------------


def test_a_bad_number_fails_only_its_own_item_of_a_torchserve_batch(served: Served) -> None:
    url = f"{served.state.inference_url}/predictions/multistyle26"
    token = served.state.tokens()["inference"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    b64 = base64.b64encode(_png((96, 64))).decode()
    good = json.dumps({"image": b64, "style": STYLE})
    numbers = ("1e309", "Infinity", "1.5", "-3")
    bad = [f'{{"image": "{b64}", "style": "{STYLE}", "max_side": {v}}}' for v in numbers]
    since = served.log_size()
    for body in bad:  # each with three innocent batch-mates sent at the same moment
        results: dict[int, httpx.Response] = {}

        def send(i: int, text: str) -> None:
            results[i] = httpx.post(url, content=text, headers=headers, timeout=120)  # noqa: B023

        threads = [threading.Thread(target=send, args=(i, t)) for i, t in enumerate([body, good, good, good])]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results[0].status_code == 400 and "max_side" in results[0].json()["message"], results[0].text
        assert [results[i].status_code for i in (1, 2, 3)] == [200, 200, 200]
    print("batch sizes seen:", served.batch_sizes(since))


# -- 5. bounded memory: thumbnails and the stylize queue -----------------------------------------


def test_unknown_thumbnail_names_allocate_nothing_and_aliases_work() -> None:
    with TestClient(create_app(device="cpu"), base_url="http://localhost") as client:
        state = client.app.state.stylekit  # type: ignore[attr-defined]
        for i in range(2000):
            assert client.get(f"/api/styles/no-such-style-{i}/thumbnail").status_code == 404
        assert len(state._thumbnail_locks) == 0
        canonical = client.get(f"/api/styles/{STYLE}/thumbnail")
        for alias in ("19", "STARRY-NIGHT", "multistyle26:19"):
            resp = client.get(f"/api/styles/{alias}/thumbnail")
            assert resp.status_code == 200 and resp.content == canonical.content
        assert set(state._thumbnail_locks) == {STYLE}


def _send_head(port: int, length: int, host: str = "127.0.0.1") -> tuple[socket.socket, bytes]:
    """Open a stylize upload of ``length`` body bytes and send only its headers; returns the boundary part."""
    body, ctype = _multipart(b"x" * length, {"style": STYLE})
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (f"POST /api/stylize HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    sock.sendall(head)
    return sock, body


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP answer from a raw socket."""
    resp = http.client.HTTPResponse(sock)
    resp.begin()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()


def test_the_stylize_queue_is_bounded(web_home: Path, photo: bytes) -> None:
    server = WebServer(web_home, "--device", "cpu", "--max-pending", "2")
    try:
        waiting = [_send_head(server.port, 100_000) for _ in range(2)]  # admitted, uploads unfinished
        # Once the server has taken both in (no clock: ask until it has), the next is refused.
        def third() -> httpx.Response:
            return _post(server.url, photo, style=STYLE, max_side="32")

        resp = _until(third, lambda r: r.status_code == 503)
        assert resp.status_code == 503 and resp.headers["retry-after"] == "2"
        assert resp.json() == {"error": "busy", "message": resp.json()["message"], "status": 503}
        for sock, body in waiting:  # finish them: they were admitted, so they are answered
            sock.sendall(body)
            assert _answer(sock)[0] == 400  # the bytes are not an image
            sock.close()
        assert _post(server.url, photo, style=STYLE, max_side="64").status_code == 200
    finally:
        server.stop()


# -- 6. slow clients, disconnects, the connection limit ------------------------------------------


def test_a_body_sent_a_byte_at_a_time_is_cut_off_with_408(web: WebServer) -> None:
    sock, body = _send_head(web.port, 1_000_000)
    sock.settimeout(0.5)
    answer = b""
    for i in range(120):  # a byte each half second: the whole body would take days
        try:
            sock.sendall(body[i : i + 1])
            answer = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            break
        if answer:
            break
    # The rest of the answer (headers and body may come in separate segments), until the
    # server closes the connection as it said it would.
    sock.settimeout(10)
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"connection: close" in answer.lower() and b'"upload_timeout"' in answer


def test_headers_sent_a_byte_at_a_time_are_cut_off(web: WebServer) -> None:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=30)
    sock.settimeout(0.3)
    head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {'a' * 200}\r\n\r\n".encode()
    closed = False
    for i in range(len(head) - 4):  # never finishes the headers
        try:
            sock.sendall(head[i : i + 1])
            closed = sock.recv(1) == b""
        except TimeoutError:
            continue
        except OSError:
            closed = True
        if closed:
            break
        time.sleep(0.1)
    sock.close()
    assert closed, "the server kept waiting for the headers"


def test_a_client_that_goes_away_mid_upload_is_one_log_line(web: WebServer) -> None:
    before = web.log_text()
    sock, body = _send_head(web.port, 200_000)
    sock.sendall(body[: len(body) // 2])
    time.sleep(0.3)
    sock.close()
    deadline = time.monotonic() + 10
    while "went away" not in web.log_text()[len(before) :] and time.monotonic() < deadline:
        time.sleep(0.2)
    new = web.log_text()[len(before) :]
    assert new.count("went away before its upload was complete") == 1 and "Traceback" not in new
    assert httpx.get(f"{web.url}/healthz").status_code == 200


def test_connections_over_the_limit_are_refused(web_home: Path) -> None:
    server = WebServer(web_home, "--device", "cpu", "--max-connections", "3", "--header-timeout", "30")
    try:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        resp = _until(lambda: httpx.get(f"{server.url}/healthz", timeout=10), lambda r: r.status_code == 503)
        assert resp.status_code == 503
        for sock in idle:
            sock.close()
        resp = _until(lambda: httpx.get(f"{server.url}/healthz", timeout=10), lambda r: r.status_code == 200)
        assert resp.status_code == 200
    finally:
        server.stop()


# -- 7. headers, host and origin --------------------------------------------------------------


def test_every_answer_has_the_security_headers(web: WebServer) -> None:
    for path in ("/", "/api/styles", "/static/app.js", "/no/such/page"):
        resp = httpx.get(f"{web.url}{path}")
        assert resp.headers["x-content-type-options"] == "nosniff", path
        csp = resp.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example", "[::2]"])
def test_a_foreign_host_name_is_refused(web: WebServer, host: str) -> None:
    resp = httpx.get(f"{web.url}/api/styles", headers={"Host": host})
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_host"


def test_allowed_host_names_are_answered(web: WebServer) -> None:
    for host in ("localhost", f"127.0.0.1:{web.port}", "stylekit.example", "[::1]:8000"):
        assert httpx.get(f"{web.url}/api/info", headers={"Host": host}).status_code == 200, host


def test_a_cross_site_post_is_refused(web: WebServer, photo: bytes) -> None:
    files = {"image": ("p.png", _png((32, 32)), "image/png")}
    foreign = httpx.post(f"{web.url}/api/stylize", files=files, data={"style": STYLE},
                         headers={"Origin": "http://evil.example"})  # fmt: skip
    assert foreign.status_code == 403 and foreign.json()["error"] == "cross_origin"
    for origin, status in (("null", 403), ("https://127.0.0.1.evil.example", 403), (web.url, 200)):
        resp = httpx.post(f"{web.url}/api/stylize", files=files, data={"style": STYLE},
                          headers={"Origin": origin})  # fmt: skip
        assert resp.status_code == status, origin


# -- 8. worker death: what a plain HTTP client must do is documented ---------------------------


def test_serving_docs_say_what_a_plain_client_does_when_a_worker_dies() -> None:
    text = (REPO / "docs" / "serving.md").read_text()
    assert "Worker died" in text and "**not** re-queued" in text and "TorchServe itself re-queues" not in text
    assert "A plain HTTP client must do the same itself" in text


# -- 9. the smaller findings --------------------------------------------------------------------


def test_404_and_405_are_json_like_every_other_error(web: WebServer) -> None:
    missing = httpx.get(f"{web.url}/no/such/page")
    assert missing.status_code == 404
    message = "There is nothing at /no/such/page."
    assert missing.json() == {"error": "not_found", "message": message, "status": 404}
    wrong = httpx.delete(f"{web.url}/api/stylize")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


def test_a_unicode_file_name_keeps_its_stem_in_the_download_name(web: WebServer) -> None:
    files = {"image": ("夕焼け.png", _png((32, 32)), "image/png")}
    resp = httpx.post(f"{web.url}/api/stylize", files=files, data={"style": STYLE})
    disposition = resp.headers["content-disposition"]
    assert "filename*=UTF-8''" in disposition
    assert unquote(disposition.split("filename*=UTF-8''")[1]) == "夕焼け-starry-night.png"
    assert 'filename="image-starry-night.png"' in disposition  # the ASCII fallback


def test_torchserve_metrics_and_options_are_on_loopback_only(served: Served) -> None:
    # Neither asks for a token (TorchServe's design, documented in docs/serving.md), so they
    # are bound to 127.0.0.1 like every other address.
    for url in (served.state.inference_url, served.state.management_url, served.state.metrics_url):
        assert url.startswith("http://127.0.0.1:"), url
    assert httpx.get(f"{served.state.metrics_url}/metrics").status_code == 200
