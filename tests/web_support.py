"""``stylekit web`` as a real server process on a free loopback port, for integration tests.

Used by the browser tests (``test_web_e2e.py``) and the hostile-request tests
(``test_hostile.py``); each server has its own ``STYLEKIT_HOME`` and log file.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[1]


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
