"""Video in the web demo: the clip jobs (``/api/videos``) and the live camera (``WebSocket /api/live``).

API tests run the real app (local engine, built-in styles) through Starlette's TestClient;
the browser tests run ``stylekit web`` as a real process and Debian's headless Chromium with
its fake camera. Clips are made here with PyAV (tests/test_video.py's helpers): 96x64, 8 frames.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.testclient import WebSocketDenialResponse

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from test_video import pan_frames, write_audio_only, write_clip  # noqa: E402
from web_support import CHROMEDRIVER, CHROMIUM, WebServer, chromium  # noqa: E402

from sdk.client import StyleClient  # noqa: E402
from sdk.web.app import WebSettings, create_app  # noqa: E402

LOCAL = "http://localhost"
LIVE = "ws://localhost/api/live"
STYLE, OTHER = "fiery-brushstrokes", "starry-night"
W, H, FRAMES = 96, 64, 8
REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Clips and frames


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("web_clips")
    photo = next(p for p in sorted((data_dir / "photos").iterdir()) if p.suffix.lower() in (".jpg", ".png"))
    frames = pan_frames(photo, FRAMES, W, H)
    pan = write_clip(d / "my clip.mp4", frames)
    data = pan.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (d / "corrupt.mp4").write_bytes(bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)))
    write_audio_only(d / "audio.m4a")
    return {"pan": pan, **{p.stem: p for p in d.iterdir() if p != pan}}


@pytest.fixture(scope="module")
def frame_jpeg(clips: dict[str, Path]) -> bytes:
    with av.open(str(clips["pan"])) as c:
        rgb = next(c.decode(video=0)).to_ndarray(format="rgb24")
    return _jpeg(rgb)


def _jpeg(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64)


# ---------------------------------------------------------------------------------------------
# Video jobs


def _app(**settings: Any) -> TestClient:
    return TestClient(create_app(device="cpu", settings=WebSettings(**settings)), base_url=LOCAL)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with _app(max_video_jobs=8) as c:
        yield c


def _post(c: TestClient, clip: Path | bytes, name: str = "my clip.mp4", media: str = "video/mp4",
          **data: str) -> Any:  # fmt: skip
    body = clip.read_bytes() if isinstance(clip, Path) else clip
    return c.post("/api/videos", files={"video": (name, body, media)}, data={"style": STYLE, **data})


def _wait_job(c: TestClient, job_id: str) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = c.get(f"/api/videos/{job_id}")
        assert response.status_code == 200, response.text
        status = dict(response.json())
        seen.append(status)
        if status["state"] in ("done", "failed"):
            # Progress only goes forward.
            done = [s["frames_done"] for s in seen]
            assert done == sorted(done)
            return status
        time.sleep(0.1)
    raise AssertionError(f"the job did not finish: {seen[-1]}")


def _temp_files(c: TestClient) -> list[Path]:
    return sorted(c.app.state.stylekit.videos.folder.iterdir())  # type: ignore[attr-defined]


def test_a_clip_comes_back_stylized_with_progress(client: TestClient, clips: dict[str, Path]) -> None:
    response = _post(client, clips["pan"], temporal="0.5", max_side="64", strength="0.9")
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert len(job_id) >= 20 and "/" not in job_id
    status = _wait_job(client, job_id)
    assert status["state"] == "done", status
    assert status["frames_done"] == status["frames_total"] == FRAMES
    assert status["error"] is None and status["fps"] > 0

    result = client.get(f"/api/videos/{job_id}/result")
    assert result.status_code == 200
    assert result.headers["content-type"] == "video/mp4"
    assert result.headers["content-disposition"] == 'attachment; filename="my-clip-fiery-brushstrokes.mp4"'
    with av.open(io.BytesIO(result.content)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    # max_side 64 on a 96x64 clip: 64x42 (even sides for H.264).
    assert len(frames) == FRAMES and frames[0].shape == (42, 64, 3)
    # Sent once, then dropped with its files.
    assert client.get(f"/api/videos/{job_id}/result").status_code == 404
    assert client.get(f"/api/videos/{job_id}").json()["error"] == "not_found"
    assert _temp_files(client) == []


def _result_frames(c: TestClient, response: Any) -> list[np.ndarray]:
    assert response.status_code == 202, response.text
    status = _wait_job(c, response.json()["id"])
    assert status["state"] == "done", status
    result = c.get(f"/api/videos/{response.json()['id']}/result")
    assert result.status_code == 200
    with av.open(io.BytesIO(result.content)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_a_job_takes_scale_a_mask_and_outside(client: TestClient, clips: dict[str, Path]) -> None:
    with av.open(str(clips["pan"])) as c:
        source = [f.to_ndarray(format="rgb24").astype(np.int16) for f in c.decode(video=0)]
    plain = _result_frames(client, _post(client, clips["pan"], temporal="0"))
    bigger = _result_frames(client, _post(client, clips["pan"], temporal="0", scale="2"))
    assert len(bigger) == FRAMES and bigger[0].shape == (H, W, 3)  # the clip's size, strokes twice as big
    assert np.abs(bigger[3].astype(np.int16) - plain[3]).mean() > 3
    # A fixed mask (one image for every frame, here at twice the size): the left half stays the video.
    mask = np.zeros((2 * H, 2 * W), np.uint8)
    mask[:, W:] = 255
    png = io.BytesIO()
    Image.fromarray(mask).save(png, "PNG")
    files = {"video": ("my clip.mp4", clips["pan"].read_bytes(), "video/mp4"),
             "mask": ("mask.png", png.getvalue(), "image/png")}  # fmt: skip
    kept = _result_frames(client, client.post("/api/videos", files=files, data={"style": STYLE}))
    left = slice(0, W // 2 - 4)
    for out, frame in zip(kept, source, strict=True):
        assert np.abs(out[:, left].astype(np.int16) - frame[:, left]).mean() < 6  # H.264 of the same pixels
        assert np.abs(out[:, W // 2 + 4 :].astype(np.int16) - frame[:, W // 2 + 4 :]).mean() > 10
    other = _result_frames(client, client.post("/api/videos", files=files,
                                                data={"style": STYLE, "outside": OTHER}))  # fmt: skip
    assert np.abs(other[2][:, left].astype(np.int16) - source[2][:, left]).mean() > 10
    assert _temp_files(client) == []


def test_a_scale_that_paints_past_the_longest_side_is_refused_at_once(clips: dict[str, Path]) -> None:
    with _app(max_side=128) as c:
        jobs = c.app.state.stylekit.videos.jobs  # type: ignore[attr-defined]
        # 96 px frames at scale 0.5 would be painted at 192 px: over 128.
        response = _post(c, clips["pan"], scale="0.5")
        assert response.status_code == 400, response.text
        body = response.json()
        assert body["error"] == "bad_option" and "scale=0.5" in body["message"] and "128" in body["message"]
        assert jobs == {} and _temp_files(c) == []
        # 0.8 paints at 120 px: within the limit.
        assert _result_frames(c, _post(c, clips["pan"], scale="0.8", temporal="0"))[0].shape == (H, W, 3)
        response = _post(c, clips["pan"], scale="9")
        assert response.status_code == 400 and "scale" in response.json()["message"]


@pytest.mark.parametrize(
    ("name", "status", "code", "words"),
    [
        ("corrupt", 400, "invalid_video", "cannot be read"),
        ("truncated", 400, "invalid_video", ""),
        ("audio", 400, "invalid_video", "has no video stream (only audio)"),
    ],
)
def test_bad_clips_fail_with_one_typed_error(client: TestClient, clips: dict[str, Path], name: str,
                                            status: int, code: str, words: str) -> None:  # fmt: skip
    response = _post(client, clips[name], name=f"{name}.mp4")
    assert response.status_code == 202
    job = _wait_job(client, response.json()["id"])
    assert job["state"] == "failed"
    error = job["error"]
    assert (error["error"], error["status"]) == (code, status)
    assert words in error["message"]
    # The client's name for the clip; never a file or folder of the server.
    folder = str(client.app.state.stylekit.videos.folder)  # type: ignore[attr-defined]
    assert f"{name}.mp4" in error["message"]
    assert folder not in error["message"] and "/tmp" not in error["message"]
    result = client.get(f"/api/videos/{response.json()['id']}/result")
    assert result.status_code == 409 and result.json()["error"] == "not_ready"
    assert result.json()["message"] == error["message"]
    assert _temp_files(client) == []
    assert client.get("/healthz").status_code == 200  # the server is still up


@pytest.mark.parametrize(
    ("data", "media", "status", "words"),
    [
        ({"temporal": "1.5"}, "video/mp4", 400, "temporal"),
        ({"temporal": "NaN"}, "video/mp4", 400, "temporal"),
        ({"strength": "+7"}, "video/mp4", 400, "strength"),
        ({"speed": "2"}, "video/mp4", 400, "Unknown option 'speed'"),
        ({"format": "png"}, "video/mp4", 400, "MP4"),
        ({"style": "no-such-style"}, "video/mp4", 404, "Unknown style"),
        ({"style": "/etc/passwd"}, "video/mp4", 404, "Unknown style"),
        ({}, "text/plain", 415, "not a video"),
    ],
)
def test_bad_options_are_refused_before_any_work(client: TestClient, clips: dict[str, Path],
                                                 data: dict[str, str], media: str, status: int,
                                                 words: str) -> None:  # fmt: skip
    jobs = client.app.state.stylekit.videos.jobs  # type: ignore[attr-defined]
    before = set(jobs)
    response = _post(client, clips["pan"], media=media, **data)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and words in body["message"]
    assert set(jobs) == before  # no job, no slot kept


def test_a_missing_clip_and_an_empty_one(client: TestClient) -> None:
    response = client.post("/api/videos", data={"style": STYLE})
    assert response.status_code in (400, 415)
    response = client.post("/api/videos", files={"image": ("x.mp4", b"", "video/mp4")}, data={"style": STYLE})
    assert response.status_code == 400 and "video" in response.json()["message"]
    response = _post(client, b"")
    assert response.status_code == 400 and response.json()["error"] == "invalid_video"
    # Each route takes its own file fields only: a clip sent to the photo route is refused.
    files = {"image": ("p.png", b"\x89PNG", "image/png"), "video": ("c.mp4", b"x", "video/mp4")}
    response = client.post("/api/stylize", files=files, data={"style": STYLE})
    assert response.status_code == 400 and "'video'" in response.json()["message"]


def test_unknown_and_path_like_job_ids_are_not_found(client: TestClient) -> None:
    for job_id in ("nope", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "a" * 100):
        for suffix in ("", "/result"):
            response = client.get(f"/api/videos/{job_id}{suffix}")
            assert response.status_code == 404, (job_id, suffix)
            assert response.json()["error"] == "not_found"


def test_limits_upload_size_frames_jobs_and_ttl(clips: dict[str, Path]) -> None:
    size = clips["pan"].stat().st_size
    with _app(max_video_bytes=size // 2, max_video_frames=4, max_video_jobs=1, video_ttl=0.2) as c:
        info = c.get("/api/info").json()
        assert info["video"] is True
        assert (info["max_video_bytes"], info["max_video_frames"]) == (size // 2, 4)
        # Over the upload limit: 413 before the clip is stored.
        too_big = _post(c, clips["pan"])
        assert too_big.status_code == 413 and too_big.json()["error"] == "image_too_large"
    with _app(max_video_frames=4, max_video_jobs=1, video_ttl=0.2) as c:
        first = _post(c, clips["pan"])
        assert first.status_code == 202
        # One job may exist: the next is refused until the first is fetched or expires.
        busy = _post(c, clips["pan"])
        assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
        assert busy.json()["error"] == "busy"
        job = _wait_job(c, first.json()["id"])
        # 8 frames where 4 are allowed: one clear error, nothing kept.
        assert job["state"] == "failed" and job["error"]["error"] == "image_too_large"
        assert "at most 4 frames" in job["error"]["message"]
        time.sleep(0.3)  # past the TTL: the failed job is dropped, its slot free again
        assert c.get(f"/api/videos/{first.json()['id']}").status_code == 404
        again = _post(c, clips["pan"])
        assert again.status_code == 202
        _wait_job(c, again.json()["id"])
        folder = c.app.state.stylekit.videos.folder  # type: ignore[attr-defined]
    # The app stopped (the TestClient's lifespan): its temp folder is gone.
    assert not folder.exists()


def test_a_foreign_origin_cannot_start_a_job(client: TestClient, clips: dict[str, Path]) -> None:
    response = client.post("/api/videos", files={"video": ("c.mp4", clips["pan"].read_bytes(), "video/mp4")},
                           data={"style": STYLE}, headers={"Origin": "http://evil.example"})  # fmt: skip
    assert response.status_code == 403 and response.json()["error"] == "cross_origin"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_torchserve_backend_refuses_video_and_live_clearly(clips: dict[str, Path], tmp_path: Path) -> None:
    backend = StyleClient(f"http://127.0.0.1:{_closed_port()}", token="unused", retries=0, timeout=5,
                          run_dir=tmp_path)  # fmt: skip
    with TestClient(create_app(backend), base_url=LOCAL) as c:
        assert c.get("/api/info").json()["video"] is False
        response = _post(c, clips["pan"])
        assert response.status_code == 400
        assert "need the local engine" in response.json()["message"]
        with c.websocket_connect(f"{LIVE}?style={STYLE}") as ws:
            error = json.loads(ws.receive_text())
            assert error["error"] == "bad_option" and "need the local engine" in error["message"]
            assert ws.receive()["code"] == 1008


# ---------------------------------------------------------------------------------------------
# Live camera over a WebSocket


@pytest.fixture(scope="module")
def live_client() -> Iterator[TestClient]:
    # A high frame rate: these tests send one frame at a time and wait for each answer.
    with _app(live_fps=50.0, max_live=2) as c:
        yield c


def _frame(ws: Any, data: bytes) -> tuple[dict[str, Any], bytes]:
    """Send one frame; its metadata and the stylized JPEG (skipping rate drops: wait and resend)."""
    while True:
        ws.send_bytes(data)
        meta = json.loads(ws.receive_text())
        if meta.get("dropped"):
            time.sleep(meta["retry_after_ms"] / 1000)
            continue
        assert "frame" in meta, meta
        return meta, ws.receive_bytes()


def test_live_frames_come_back_stylized_and_a_style_switch_takes_effect(
    live_client: TestClient, frame_jpeg: bytes
) -> None:
    with live_client.websocket_connect(f"{LIVE}?style={STYLE.upper()}") as ws:
        # An alias or another case resolves to the listed name, as for photos.
        assert json.loads(ws.receive_text()) == {"style": STYLE}
        outputs = []
        for i in range(3):
            meta, jpeg = _frame(ws, frame_jpeg)
            assert (meta["frame"], meta["style"], meta["width"], meta["height"]) == (i + 1, STYLE, W, H)
            outputs.append(_pixels(jpeg))
        assert outputs[0].shape == (H, W, 3)
        assert np.abs(outputs[0] - _pixels(frame_jpeg)).mean() > 10  # painted, not the photo
        ws.send_text(json.dumps({"style": OTHER}))
        assert json.loads(ws.receive_text()) == {"style": OTHER}
        meta, jpeg = _frame(ws, frame_jpeg)
        assert meta["style"] == OTHER and meta["frame"] == 4
        assert np.abs(_pixels(jpeg) - outputs[-1]).mean() > 10  # the next frame is in the new style


def test_live_handshake_from_a_foreign_origin_or_host_is_refused(live_client: TestClient) -> None:
    foreign = {"Origin": "http://evil.example"}
    with pytest.raises(WebSocketDenialResponse) as info, live_client.websocket_connect(LIVE, headers=foreign):
        pass
    assert info.value.status_code == 403 and info.value.json()["error"] == "cross_origin"
    with pytest.raises(WebSocketDenialResponse) as info, live_client.websocket_connect("ws://evil.example/api/live"):
        pass
    assert info.value.status_code == 400 and info.value.json()["error"] == "invalid_host"
    # The page's own origin is welcome.
    with live_client.websocket_connect(f"{LIVE}?style={STYLE}", headers={"Origin": LOCAL}) as ws:
        assert json.loads(ws.receive_text()) == {"style": STYLE}


@pytest.mark.parametrize("kind", ["bytes", "pixels", "text"])
def test_live_oversized_messages_get_one_error_then_1009(live_client: TestClient, kind: str) -> None:
    limit = WebSettings().live_max_bytes
    if kind == "bytes":
        message: bytes | str = b"\xff\xd8" + bytes(limit)
    elif kind == "pixels":  # small in bytes, over the side limit
        buf = io.BytesIO()
        Image.new("RGB", (WebSettings().live_max_side + 1, 8), "white").save(buf, "PNG")
        message = buf.getvalue()
    else:
        message = json.dumps({"style": "x" * 5000})
    with live_client.websocket_connect(f"{LIVE}?style={STYLE}") as ws:
        ws.receive_text()
        ws.send_bytes(message) if isinstance(message, bytes) else ws.send_text(message)
        error = json.loads(ws.receive_text())
        assert error["error"] == "image_too_large" and error["status"] == 413
        assert ws.receive()["code"] == 1009


def test_live_garbage_unknown_styles_and_bad_text_get_an_error_and_the_stream_goes_on(
    live_client: TestClient, frame_jpeg: bytes
) -> None:
    with live_client.websocket_connect(LIVE) as ws:
        ws.send_bytes(frame_jpeg)  # no style yet
        assert "Choose a style" in json.loads(ws.receive_text())["message"]
        for style in ("no-such-style", "/etc/passwd", "../../secret.pt"):
            ws.send_text(json.dumps({"style": style}))
            error = json.loads(ws.receive_text())
            assert error["error"] == "unknown_style" and error["status"] == 404
        for text in ("not json", "[1]", json.dumps({"style": STYLE, "path": "/etc"})):
            ws.send_text(text)
            assert json.loads(ws.receive_text())["error"] == "bad_option"
        ws.send_text(json.dumps({"style": STYLE}))
        assert json.loads(ws.receive_text()) == {"style": STYLE}
        for garbage in (b"garbage", b"\xff\xd8\xff" + bytes(100), frame_jpeg[: len(frame_jpeg) // 3]):
            ws.send_bytes(garbage)
            error = json.loads(ws.receive_text())
            assert error["error"] == "invalid_image" and error["status"] == 400
            time.sleep(0.03)  # past the frame interval, so the next is not dropped for the rate
        meta, jpeg = _frame(ws, frame_jpeg)
        assert meta["frame"] == 1 and _pixels(jpeg).shape == (H, W, 3)


def test_live_frames_over_the_rate_are_dropped_and_connections_are_limited(frame_jpeg: bytes) -> None:
    with _app(live_fps=0.2, max_live=1) as c:
        with c.websocket_connect(f"{LIVE}?style={STYLE}") as ws:
            ws.receive_text()
            for _ in range(4):  # back to back: one frame per 5 s is allowed
                ws.send_bytes(frame_jpeg)
            answers = []
            while len([a for a in answers if "frame" in a or "dropped" in a]) < 4:
                answers.append(json.loads(ws.receive_text()))
                if "frame" in answers[-1]:
                    ws.receive_bytes()
            dropped = [a for a in answers if a.get("dropped") == "rate"]
            assert "frame" in answers[0] and len(dropped) == 3
            assert all(0 < a["retry_after_ms"] <= 5000 for a in dropped)
            # One live connection at a time here: the next is told so and closed with 1013.
            with c.websocket_connect(f"{LIVE}?style={STYLE}") as second:
                error = json.loads(second.receive_text())
                assert error["error"] == "busy"
                assert second.receive()["code"] == 1013
        # The slot is free again once the first has gone.
        with c.websocket_connect(f"{LIVE}?style={STYLE}") as ws:
            assert json.loads(ws.receive_text()) == {"style": STYLE}


# ---------------------------------------------------------------------------------------------
# In a browser: Chromium with its fake camera


needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="Debian's chromium and chromium-driver are not installed"
)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebServer]:
    server = WebServer(tmp_path_factory.mktemp("web_video_home"), "--device", "cpu")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    chrome = chromium(camera=True)
    yield chrome
    chrome.quit()


def _open(driver: Any, url: str, mode: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".style-option")) > 1)
    # /api/info has said video works here.
    WebDriverWait(driver, 10).until(lambda d: d.execute_script("return state.info !== null"))
    driver.find_element(By.CSS_SELECTOR, f'label[for="mode-{mode}"]').click()


def _pick(driver: Any, style: str) -> None:
    from selenium.webdriver.common.by import By

    label = driver.find_element(By.CSS_SELECTOR, f'label[for="style-{style}"]')
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", label)
    label.click()


@pytest.mark.integration
@needs_browser
def test_browser_live_camera_shows_frames_fps_and_switches_style(web: WebServer, driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(driver, web.url, "live")
    _pick(driver, STYLE)
    driver.find_element(By.ID, "live-start").click()
    wait = WebDriverWait(driver, 90)

    def frames() -> int:
        return int(driver.find_element(By.ID, "live-frames").text or 0)

    wait.until(lambda d: frames() >= 4)
    result = driver.find_element(By.ID, "result")
    assert result.get_attribute("src").startswith("blob:")
    assert result.get_attribute("data-style") == STYLE
    assert float(driver.find_element(By.ID, "live-fps").text) > 0
    assert driver.execute_script("return document.getElementById('result').naturalWidth") > 0
    assert driver.find_element(By.ID, "error").is_displayed() is False

    # A style switch: the frames the server paints from now on say so (it echoes each frame's style).
    before = frames()
    _pick(driver, OTHER)
    wait.until(lambda d: result.get_attribute("data-style") == OTHER)
    wait.until(lambda d: frames() >= before + 3)
    assert "Starry Night" in driver.find_element(By.ID, "live-style").text
    stats = driver.find_element(By.ID, "live-stats").text
    assert "frames/s" in stats
    driver.execute_script("window.scrollTo(0, 0)")
    (REPO / "artifacts").mkdir(exist_ok=True)
    # Under artifacts/ (git-ignored), as the photo page's: docs/live_screenshot.png is one, committed.
    driver.save_screenshot(str(REPO / "artifacts" / "live_screenshot.png"))
    driver.find_element(By.ID, "live-stop").click()
    wait.until(lambda d: d.find_element(By.ID, "live-start").is_enabled())


@pytest.mark.integration
@needs_browser
def test_browser_video_upload_shows_progress_and_offers_the_mp4(web: WebServer, driver: Any,
                                                                clips: dict[str, Path]) -> None:  # fmt: skip
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _open(driver, web.url, "video")
    driver.find_element(By.ID, "video-input").send_keys(str(clips["pan"]))
    _pick(driver, STYLE)
    driver.find_element(By.ID, "stylize").click()
    download = WebDriverWait(driver, 120).until(ec.visibility_of_element_located((By.ID, "download")))
    assert driver.find_element(By.ID, "video-progress").get_attribute("value") == "100"
    assert f"frame {FRAMES} of {FRAMES}" in driver.find_element(By.ID, "video-progress-text").text
    assert download.get_attribute("download") == "my-clip-fiery-brushstrokes.mp4"
    assert download.get_attribute("href").startswith("blob:")
    # The page's player has the same blob: it plays, at the clip's size.
    player = ("const v = document.getElementById('result-video');"
              "return [v.readyState, v.videoWidth, v.videoHeight];")
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(player)[0] >= 1)
    assert driver.execute_script(player)[1:] == [W, H]
    assert driver.find_element(By.ID, "status").text.startswith("Done")
