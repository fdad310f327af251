"""``stylekit web`` as a real server process on a free loopback port, for integration tests.

Used by the browser tests (``test_web_e2e.py``) and the hostile-request tests
(``test_hostile.py``); each server has its own ``STYLEKIT_HOME`` and log file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]
# Debian's chromium and chromium-driver (scripts/test.sh installs them).
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def chromium(*, camera: bool = False, downloads: Path | None = None) -> Any:
    """A headless Chromium (Selenium WebDriver) at a fixed window size, the one set of flags
    every browser test uses; ``camera``: its synthetic camera, allowed without asking;
    ``downloads``: files the page downloads land there, without a prompt."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    args = ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
            "--window-size=1360,1000", "--force-device-scale-factor=1"]  # fmt: skip
    if camera:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    for arg in args:
        options.add_argument(arg)
    if downloads is not None:
        prefs = {"download.default_directory": str(downloads), "download.prompt_for_download": False}
        options.add_experimental_option("prefs", prefs)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    if downloads is not None:
        behavior = {"behavior": "allow", "downloadPath": str(downloads)}
        driver.execute_cdp_cmd("Browser.setDownloadBehavior", behavior)
    return driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class WebServer:
    """``stylekit web`` in its own process on a free loopback port."""

    def __init__(self, home: Path, *extra: str, healthy: bool = True) -> None:
        """Start and wait for ``/healthz``: 200, or with ``healthy=False`` any answer (503)."""
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        log_path = self.log_path = home / f"web-{self.port}.log"
        self._log = log_path.open("wb")
        cmd = [sys.executable, "-m", "sdk.cli", "web", "--port", str(self.port), *extra]
        env = {**os.environ, "STYLEKIT_HOME": str(home)}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                status = httpx.get(f"{self.url}/healthz", timeout=2).status_code
                if status == 200 or not healthy:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail(f"stylekit web did not come up:\n{log_path.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        """What the server has logged so far."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")
