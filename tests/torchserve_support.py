"""A real TorchServe for integration tests: the built-in archives on free loopback ports.

Used by the serving tests and the web demo's end-to-end test through the ``served`` fixture in
``conftest.py``; one server per test module, its own ports, run dir, TMPDIR and tokens.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sdk.client import StyleClient
from sdk.package import read_package
from sdk.serving import server
from sdk.serving.archive import build_archive
from sdk.styles import BUILTIN_DIR

MAX_PIXELS = 2_000_000  # the server's STYLEKIT_MAX_PIXELS, to provoke a 413 with a small upload
TEST_MODEL_CONFIG = """\
minWorkers: 1
maxWorkers: 1
batchSize: 4
maxBatchDelay: 150
responseTimeout: 120
startupTimeout: 120
"""


@dataclass
class Served:
    state: server.ServerState
    home: Path
    substyles: list[str]
    started: list[str]  # what start() said it was waiting for

    @property
    def run_dir(self) -> Path:
        return Path(self.state.run_dir)

    def client(self, **kwargs: object) -> StyleClient:
        return StyleClient(self.state.inference_url, run_dir=self.run_dir, **kwargs)

    def batch_sizes(self, since: int) -> list[int]:
        """Batch sizes the handler logged after byte ``since`` of the worker log."""
        text = (self.run_dir / "logs" / "model_log.log").read_bytes()[since:].decode(errors="replace")
        return [int(n) for n in re.findall(r"batch of (\d+) request", text)]

    def log_size(self) -> int:
        return (self.run_dir / "logs" / "model_log.log").stat().st_size


def free_port_block(count: int) -> int:
    """A base port with ``count`` consecutive free ports on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65000:
            continue
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no block of free ports found")


def model_config_dir(root: Path) -> Path:
    """A model-config folder with the tests' default.yaml (one worker, batches of 4)."""
    config_dir = root / "model-config"
    config_dir.mkdir(exist_ok=True)
    (config_dir / "default.yaml").write_text(TEST_MODEL_CONFIG)
    return config_dir


@contextmanager
def running_torchserve(root: Path, store: Path | None = None) -> Iterator[Served]:
    """A real TorchServe on free loopback ports, stopped on exit: serving the archives in
    ``store``, or (by default) the built-in archives built into ``root/store``."""
    packages = [read_package(BUILTIN_DIR / "multistyle26.json"), read_package(BUILTIN_DIR / "arbitrary.json")]
    if store is None:
        store = root / "store"
        for pkg in packages:
            build_archive(pkg, store, config_dir=model_config_dir(root))
    base = free_port_block(5)
    started: list[str] = []
    state = server.start(
        model_store=store,
        port=base,
        worker_port=free_port_block(4),
        run_dir=root / "home" / "serve",
        env={"STYLEKIT_MAX_PIXELS": str(MAX_PIXELS)},
        timeout=180,
        progress=started.append,
    )
    try:
        substyles = [s.name for s in sorted(packages[0].manifest.styles, key=lambda s: s.index)]
        yield Served(state, root / "home", substyles, started)
    finally:
        server.stop(state)


