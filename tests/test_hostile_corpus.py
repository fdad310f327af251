"""Every odd file and absurd option, sent to all four front ends: SDK, CLI, web app, TorchServe.

For each case and front end the outcome is one of two: the image at the right size, or a
refusal that is a 4xx JSON body / a typed ``StylekitError`` / one ``stylekit: error:`` line
with exit 2, in one sentence. Never a 5xx, never a traceback, and the servers (a real
``stylekit web`` and a real TorchServe on loopback) answer the next request on the same
connection.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hostile_corpus import ABSURD_OPTIONS, ODD_VALID_OPTIONS, Case, odd_files
from PIL import Image
from torchserve_support import Served
from web_support import WebServer

import sdk
from sdk.cli import main as cli_main
from sdk.errors import StylekitError

pytestmark = pytest.mark.integration

STYLE = "starry-night"
PHOTO_SIZE = (64, 48)


@dataclass
class Outcome:
    status: int  # 200: an image came back; else the HTTP status, the error's status, or the CLI's exit code
    size: tuple[int, int] | None
    message: str


def _cases(content_dir: Path) -> list[Case]:
    photo = Image.open(sorted(content_dir.glob("*.jpg"))[0]).convert("RGB")
    small = odd_files(photo)
    jpeg = next(c for c in small if c.name == "webp").data  # a valid 64x48 photo
    cases = list(small)
    cases += [Case(f"option-{name}", jpeg, None, opts) for name, opts in ABSURD_OPTIONS]
    for name, opts, side in ODD_VALID_OPTIONS:
        w, h = PHOTO_SIZE
        scale = 1.0 if side is None or side >= max(w, h) else side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        cases.append(Case(f"valid-{name}", jpeg, size, opts))
    return cases


def _data_dir() -> Path:
    from conftest import DATA

    return DATA / "content"


CASES = _cases(_data_dir()) if _data_dir().is_dir() else []


def _multipart(data: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'.encode() + v.encode() + b"\r\n"
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="photo"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
    )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class KeptConnection:
    """One HTTP/1.1 connection, checked to be the same socket after every answer.

    ``closes_on_error``: the server may end the connection after an error answer if it says
    so (``Connection: close``), so a client knows to open a new one and loses nothing.
    TorchServe 0.12's frontend does this for every status >= 400; stylekit's web app never.
    """

    def __init__(self, host: str, port: int, token: str | None = None, *, closes_on_error: bool = False
                 ) -> None:  # fmt: skip
        self.conn = http.client.HTTPConnection(host, port, timeout=120)
        self.closes_on_error = closes_on_error
        self.token = token
        self._connect()

    def _connect(self) -> None:
        self.conn.close()
        self.conn.connect()
        self.local = self.conn.sock.getsockname()

    def post(self, path: str, data: bytes, fields: dict[str, str]) -> Outcome:
        body, ctype = _multipart(data, fields)
        headers = {"Content-Type": ctype}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.conn.request("POST", path, body=body, headers=headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        announced = resp.getheader("connection", "").lower() == "close"
        assert not announced or (self.closes_on_error and resp.status >= 400), "closed after this answer"
        if announced:
            self._connect()
        assert self.conn.sock is not None and self.conn.sock.getsockname() == self.local, (
            "the server closed the connection after this answer without saying so"
        )
        if resp.status == 200:
            return Outcome(200, Image.open(io.BytesIO(payload)).size, "")
        assert resp.getheader("content-type", "").startswith("application/json"), payload[:200]
        body_json = json.loads(payload)
        assert body_json["status"] == resp.status and isinstance(body_json["error"], str)
        return Outcome(resp.status, None, str(body_json["message"]))


def _one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message and len(message) < 400, message


def _check(case: Case, out: Outcome, *, refused: range) -> None:
    if case.size is not None:
        assert out.status == 200 and out.size == case.size, (out, case.name)
    else:
        assert out.status in refused, (out, case.name)
        _one_sentence(out.message)


# ---------------------------------------------------------------------------------------------
# The four front ends


def _pythonic(key: str, value: str) -> Any:
    """What a Python caller would pass for a wire value (numbers as numbers where they parse)."""
    if key == "style":
        if "=" not in value:
            return value
        return {k: _pythonic("weight", w) for k, _, w in (p.partition("=") for p in value.split(","))}
    if not value.isascii() or value.startswith("+"):
        return value  # what only text can be: the SDK must refuse it as text
    for kind in (int, float):
        with contextlib.suppress(ValueError, OverflowError):
            return kind(value)
    return value


SDK_OPTIONS = ("style", "strength", "preserve_color", "max_side", "scale", "outside")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_sdk(case: Case) -> None:
    if any(k not in SDK_OPTIONS for k in case.options):
        pytest.skip("a misspelt keyword in a Python call is Python's TypeError")
    kwargs = {k: _pythonic(k, v) for k, v in case.options.items()}
    kwargs.setdefault("style", STYLE)
    try:
        image = sdk.stylize(case.data, **kwargs)
        out = Outcome(200, image.size, "")
    except StylekitError as exc:
        out = Outcome(exc.http_status, None, exc.message)
    # A typed error of any status: a trusted caller may name a package file, and one that is
    # not a package is a package error (500), not the caller's 4xx.
    _check(case, out, refused=range(400, 600))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_cli(case: Case, tmp_path: Path) -> None:
    src = tmp_path / "in.img"
    src.write_bytes(case.data)
    out_file = tmp_path / "out.png"
    args = ["stylize", str(src), "-o", str(out_file)]
    opts = {"style": STYLE, **case.options}
    for key, value in opts.items():
        flag = "-s" if key == "style" else f"--{key.replace('_', '-')}"
        if key == "preserve_color":
            args += [flag] if value == "true" else [flag, value]
        else:
            args += [flag, value]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = cli_main(args)
    lines = err.getvalue().splitlines()
    if rc == 0:
        out = Outcome(200, Image.open(out_file).size, "")
    else:
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("stylekit: error: "), lines
        out = Outcome(rc, None, lines[0])
    _check(case, out, refused=range(2, 3))


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeptConnection]:
    # --max-side 4000: the 4000x16 strip comes back whole (the default, 2048, scales it down).
    server = WebServer(tmp_path_factory.mktemp("corpus_web"), "--device", "cpu", "--max-side", "4000")
    try:
        yield KeptConnection("127.0.0.1", server.port)
        assert "Traceback" not in server.log_text()
    finally:
        server.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_web(case: Case, web: KeptConnection) -> None:
    fields = {"style": STYLE, **case.options}
    _check(case, web.post("/api/stylize", case.data, fields), refused=range(400, 500))


@pytest.fixture(scope="module")
def torchserve(served: Served) -> KeptConnection:
    port = int(served.state.inference_url.rsplit(":", 1)[1])
    return KeptConnection("127.0.0.1", port, token=served.state.tokens()["inference"], closes_on_error=True)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_torchserve(case: Case, torchserve: KeptConnection) -> None:
    fields = {"style": STYLE, **case.options}
    _check(case, torchserve.post("/predictions/multistyle26", case.data, fields), refused=range(400, 500))
