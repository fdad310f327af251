"""End to end on a real TorchServe: built-in archives, the handler, StyleClient, stop without leftovers.

One server for the whole module (loopback, its own ports, run dir, TMPDIR and worker ports),
started by ``sdk.serving.server.start`` and always stopped. The model configs used here batch
requests that arrive within 150 ms (batch size 4), so concurrent requests share a batch.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil
import pytest
from PIL import Image
from torchserve_support import Served

import sdk
from sdk.client import StyleClient
from sdk.errors import (
    AuthenticationError,
    BadOptionError,
    ImageTooLargeError,
    InvalidImageError,
    ServerError,
    UnknownStyleError,
)
from sdk.serving import server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

def _load_rgb(path: Path, size: tuple[int, int] | None = None) -> Image.Image:
    img = Image.open(path).convert("RGB")
    return img.resize(size, Image.Resampling.BILINEAR) if size else img


def _max_diff(a: Image.Image, b: Image.Image) -> int:
    assert a.size == b.size and a.mode == b.mode
    return int(np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16)).max())


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_styles_lists_every_substyle_and_the_arbitrary_model(served: Served) -> None:
    client = served.client()
    assert client.health() == {"status": "Healthy"}
    styles = {s.name: s for s in client.styles()}
    assert set(served.substyles) <= set(styles)
    assert {styles[name].package for name in served.substyles} == {"multistyle26"}
    assert styles["arbitrary"].kind == "arbitrary"
    # One StyleInfo everywhere: the server lists its styles as the local registry does.
    local = {i.name: i for i in sdk.list_styles()}
    for name in [*served.substyles, "arbitrary"]:
        remote, here = styles[name], local[name]
        assert (remote.kind, remote.description, remote.aliases, remote.index) == (
            here.kind, here.description, here.aliases, here.index)  # fmt: skip
        assert (remote.source, remote.license, remote.revision) == (here.source, here.license, here.revision)
        assert remote.origin == f"server:{served.state.inference_url}"
    # While it started, the server said what it was waiting for.
    [waiting] = served.started
    assert "waiting until it answers and arbitrary, multistyle26 each have a ready worker" in waiting
    described = client.describe("multistyle26")
    assert described["stylekit"]["kind"] == "multistyle"
    assert len(described["stylekit"]["styles"]) == len(served.substyles) == 26
    assert described["batchSize"] == 4


@pytest.mark.parametrize(
    ("photo", "options"),
    [
        ("golden_gate.jpg", {}),
        ("chicago.jpg", {"strength": 0.6, "preserve_color": True, "max_side": 400}),
    ],
)
def test_remote_output_equals_local(
    served: Served, data_dir: Path, photo: str, options: dict[str, object]
) -> None:
    path = data_dir / "content" / photo
    style = served.substyles[3]
    remote = served.client().stylize(path, style, **options)
    local = sdk.stylize(path, style=style, device="cpu", **options)
    assert _max_diff(remote, local) <= 1


def test_blend_and_arbitrary_equal_local(served: Served, data_dir: Path, style_images: list[Path]) -> None:
    photo = data_dir / "content" / "golden_gate.jpg"
    client = served.client()
    blend = {served.substyles[0]: 0.7, served.substyles[5]: 0.3}
    assert _max_diff(client.stylize(photo, blend), sdk.stylize(photo, style=blend, device="cpu")) <= 1
    painting = style_images[4]
    remote = client.stylize(photo, "arbitrary", style_image=painting, max_side=256)
    local = sdk.stylize(photo, style="arbitrary", style_image=painting, max_side=256, device="cpu")
    assert remote.size == (256, 256) and _max_diff(remote, local) <= 1


def test_client_is_a_backend_for_sdk_stylize(served: Served, photos: list[Path]) -> None:
    client = served.client()
    via_api = sdk.stylize(photos[0], style=served.substyles[1], backend=client)
    assert _max_diff(via_api, client.stylize(photos[0], served.substyles[1])) == 0
    # Array and PIL inputs travel losslessly (PNG) and come back at their size.
    array = np.asarray(_load_rgb(photos[1], (120, 88)))
    assert client.stylize(array, served.substyles[1]).size == (120, 88)


def test_the_remote_path_runs_without_torch(served: Served, photos: list[Path]) -> None:
    code = (
        "import sys\n"
        "import numpy as np\n"
        "from PIL import Image\n"
        "from sdk.client import StyleClient\n"
        "client = StyleClient(sys.argv[1], run_dir=sys.argv[2])\n"
        "out = client.stylize(sys.argv[3], sys.argv[4])\n"
        "small = client.stylize(np.zeros((40, 60, 3), np.uint8), sys.argv[4])\n"
        "print(out.size == Image.open(sys.argv[3]).size, small.size, 'torch' in sys.modules)\n"
    )
    args = [served.state.inference_url, str(served.run_dir), str(photos[2]), served.substyles[0]]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["True", "(60,", "40)", "False"]


def test_mixed_sizes_in_one_batch(served: Served, photos: list[Path]) -> None:
    sizes = [(256, 256), (200, 120), (97, 131), (320, 180)]
    images = [_load_rgb(p, s) for p, s in zip(photos, sizes, strict=False)]
    style = served.substyles[2]
    mark = served.log_size()
    barrier = threading.Barrier(len(images))

    def send(img: Image.Image) -> Image.Image:
        client = served.client()
        client.styles()  # learn the style -> model map first, so the requests leave together
        barrier.wait()
        return client.stylize(img, style)

    with ThreadPoolExecutor(len(images)) as pool:
        results = list(pool.map(send, images))
    for img, out in zip(images, results, strict=True):
        assert out.size == img.size
        assert _max_diff(out, sdk.stylize(img, style=style, device="cpu")) <= 1
    assert max(served.batch_sizes(mark)) >= 2


def test_corrupt_image_gets_400_while_batch_mates_succeed(served: Served, photos: list[Path]) -> None:
    good = photos[5].read_bytes()
    corrupt = good[: len(good) // 3]  # a truncated JPEG
    bodies = [good, corrupt, good, good]
    token = served.state.tokens()["inference"]
    url = f"{served.state.inference_url}/predictions/multistyle26"
    mark = served.log_size()
    barrier = threading.Barrier(len(bodies))

    def send(body: bytes) -> httpx.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "image/jpeg",
            "X-Stylekit-Style": served.substyles[0],
        }
        barrier.wait()
        return httpx.post(url, content=body, headers=headers, timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(send, bodies))
    assert [r.status_code for r in answers] == [200, 400, 200, 200]
    assert answers[1].headers["content-type"].startswith("application/json")
    assert answers[1].json()["error"] == "invalid_image"
    for ok in (answers[0], answers[2], answers[3]):
        assert ok.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(ok.content)).size == Image.open(photos[5]).size
    assert max(served.batch_sizes(mark)) >= 2


def test_request_formats_json_and_headers(served: Served, photos: list[Path]) -> None:
    import base64

    token = served.state.tokens()["inference"]
    auth = {"Authorization": f"Bearer {token}"}
    url = f"{served.state.inference_url}/predictions/multistyle26"
    body = {
        "image": base64.b64encode(photos[6].read_bytes()).decode(),
        "style": served.substyles[4],
        "format": "jpeg",
    }
    answer = httpx.post(url, json=body, headers=auth, timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    answer = httpx.post(
        url,
        content=photos[6].read_bytes(),
        headers={
            **auth,
            "Content-Type": "image/jpeg",
            "X-Stylekit-Style": served.substyles[4],
            "X-Stylekit-Max-Side": "64",
        },
        timeout=60,
    )
    assert answer.status_code == 200 and max(Image.open(io.BytesIO(answer.content)).size) == 64


def test_eight_concurrent_clients(
    served: Served, photos: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", str(served.home))  # StyleClient() finds this server
    monkeypatch.delenv("STYLEKIT_TOKEN", raising=False)
    monkeypatch.delenv("STYLEKIT_SERVER", raising=False)
    style = served.substyles[7]
    inputs = [_load_rgb(p, (128, 96)) for p in photos[10:18]]
    expected = [sdk.stylize(img, style=style, device="cpu") for img in inputs]

    def work(i: int) -> int:
        with StyleClient() as client:
            return _max_diff(client.stylize(inputs[i], style), expected[i])

    with ThreadPoolExecutor(8) as pool:
        assert max(pool.map(work, range(8))) <= 1


def test_errors_come_back_typed(served: Served, photos: list[Path], tmp_path: Path) -> None:
    client = served.client()
    with pytest.raises(UnknownStyleError, match="no-such-style"):
        client.stylize(photos[0], "no-such-style")
    with pytest.raises(BadOptionError, match="strength"):
        client.stylize(photos[0], served.substyles[0], strength=2.0)
    with pytest.raises(BadOptionError, match="style image"):
        client.stylize(photos[0], "arbitrary")
    big = Image.new("RGB", (1500, 1500), (120, 80, 40))
    with pytest.raises(ImageTooLargeError):
        client.stylize(_png(big), served.substyles[0])
    with pytest.raises(InvalidImageError):
        client.stylize(b"not an image at all", served.substyles[0])


def test_stylize_many_keeps_order_and_reports_failures(
    served: Served, photos: list[Path], tmp_path: Path
) -> None:
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(photos[0].read_bytes()[:500])
    inputs: list[Path] = [*photos[20:24], corrupt, photos[24]]
    results = list(served.client().stylize_many(inputs, served.substyles[9], concurrency=3, progress=False))
    assert [r.source for r in results] == [str(p) for p in inputs]
    assert [r.ok for r in results] == [True, True, True, True, False, True]
    assert isinstance(results[4].error, InvalidImageError)
    assert all(r.image is not None and r.image.size == (256, 256) for r in results if r.ok)


def test_requests_without_a_valid_token_are_refused(served: Served, photos: list[Path]) -> None:
    url = served.state.inference_url
    answer = httpx.post(f"{url}/predictions/multistyle26", content=photos[0].read_bytes(),
                        headers={"Content-Type": "image/jpeg"}, timeout=30)  # fmt: skip
    assert answer.status_code in (400, 401) and answer.json()["type"] == "InvalidKeyException"
    assert httpx.get(f"{served.state.management_url}/models", timeout=30).status_code in (400, 401)
    with pytest.raises(AuthenticationError):
        StyleClient(url, token="wrong-token", retries=0).stylize(
            photos[0], "multistyle26:" + served.substyles[0]
        )


def test_an_expired_key_is_renewed_from_the_key_file(served: Served, photos: list[Path]) -> None:
    key_file = served.state.key_file
    keys = json.loads(key_file.read_text())
    keys["inference"]["key"] = "expired0"  # what the file holds once TorchServe's key has expired
    key_file.write_text(json.dumps(keys))
    client = served.client(retries=0)
    assert client.stylize(photos[40], served.substyles[2]).size == (256, 256)
    assert json.loads(key_file.read_text())["inference"]["key"] not in ("expired0", "")


def test_register_says_the_model_api_is_off(served: Served) -> None:
    with pytest.raises(ServerError, match="model API is off"):
        served.client().register("multistyle26.mar")


def test_metrics_and_scale(served: Served) -> None:
    client = served.client()
    metrics = client.metrics()
    requests = {
        sample["labels"].get("model_name"): sample["value"]
        for sample in metrics.get("ts_inference_requests_total", [])
    }
    assert requests.get("multistyle26", 0) > 0
    assert "1" in json.dumps(client.scale("arbitrary", 1))


def test_killed_worker_restarts_and_requests_succeed(
    served: Served, photos: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    client = served.client(retries=8, backoff=0.5)
    [old] = [w["pid"] for w in client.describe("multistyle26")["workers"]]
    # About 2 M pixels (the server's limit): seconds of work on a CPU, so the kill lands mid-run.
    big = _png(_load_rgb(photos[30], (1400, 1400)))
    result: dict[str, object] = {}

    def in_flight() -> None:
        result["image"] = client.stylize(big, served.substyles[11])

    since = served.log_size()
    with caplog.at_level("INFO", logger="sdk.client"):
        sender = threading.Thread(target=in_flight)
        sender.start()
        deadline = time.monotonic() + 60
        while not served.batch_sizes(since) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert served.batch_sizes(since), "the request never reached the worker"
        os.kill(old, signal.SIGKILL)  # the request is inside the worker now
        sender.join(timeout=180)
    assert isinstance(result.get("image"), Image.Image) and result["image"].size == (1400, 1400)
    # It was lost with the worker and the client sent it again.
    assert any("attempt 1" in r.getMessage() for r in caplog.records if r.name == "sdk.client")
    assert client.stylize(photos[31], served.substyles[11]).size == (256, 256)
    [new] = [w["pid"] for w in client.describe("multistyle26")["workers"]]
    assert new != old and psutil.pid_exists(new) and not psutil.pid_exists(old)


def test_client_retries_503_until_a_worker_is_back(
    served: Served, photos: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    client = served.client(retries=7, backoff=0.5)
    client.styles()  # learn which model serves the style while it has workers
    assert "0" in json.dumps(client.scale("multistyle26", 0))
    restore = threading.Timer(1.0, lambda: served.client().scale("multistyle26", 1, wait=False))
    restore.start()
    try:
        with caplog.at_level("INFO", logger="sdk.client"):
            out = client.stylize(photos[32], served.substyles[12])
    finally:
        restore.join()
        served.client().scale("multistyle26", 1)
    assert out.size == (256, 256)
    assert any("503" in r.getMessage() for r in caplog.records if r.name == "sdk.client")


def test_cli_status_reports_the_running_server(served: Served) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "serve", "status", "--run-dir", str(served.run_dir)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["running"] is True and info["health"] == "Healthy"
    assert set(info["models"]) == {"multistyle26", "arbitrary"}


def test_stop_leaves_no_process_behind(served: Served) -> None:
    sid = served.state.pid
    before = server._session_processes(sid)
    assert any("java" in " ".join(p.cmdline()) for p in before)
    assert server.stop(served.state) is True
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in before
    ):
        time.sleep(0.2)
    assert not server.session_alive(sid)
    assert not [p for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{served.state.inference_url}/ping", timeout=5)
    assert server.status(served.run_dir) == {"running": False, "run_dir": str(served.run_dir)}
