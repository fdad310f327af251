"""Serving throughput: TorchServe + stylekit handler next to the local engine, same work, same run.

For 1, 4 and 8 concurrent clients, every client sends 512 px JPEG photos and gets PNGs back:
- ``served``: ``StyleClient.send`` against a TorchServe started here (its own ports and
  run dir, the production model config from ``deploy/model-config``);
- ``local``: ``Engine.stylize`` in this process doing the same work (decode the JPEG bytes,
  stylize, encode PNG), with the same number of threads.

Prints images/s and p50/p99 latency per row, the serving overhead (throughput lost against
local) and p99/p50. Goals: overhead under 10 % at 1, 4 and 8 clients, p99 under 2x p50.
``--runner`` picks the runner of both sides (``sdk.runners``).

    .venv/bin/python benchmarks/serve_throughput.py [--style NAME] [--size 512] [--requests 8] [--rounds 2]
        [--runner auto|compiled|torchscript]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def photos_at(size: int, count: int) -> list[bytes]:
    """``count`` photos from the test data, resized to ``size`` x ``size``, as JPEG bytes."""
    paths = sorted((DATA / "content").glob("*.jpg")) + sorted((DATA / "photos").glob("*.jpg"))
    out = []
    for path in paths[:count]:
        img = Image.open(path).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
        out.append(buf.getvalue())
    return out


def run_load(
    work: Callable[[bytes], bytes], images: list[bytes], clients: int, per_client: int
) -> dict[str, float]:
    """``clients`` threads, each doing ``per_client`` calls; images/s and latency percentiles."""
    latencies: list[float] = []

    def client(i: int) -> None:
        for j in range(per_client):
            data = images[(i * per_client + j) % len(images)]
            start = time.perf_counter()
            out = work(data)
            latencies.append(time.perf_counter() - start)
            if not out.startswith(b"\x89PNG"):
                raise RuntimeError("not a PNG answer")

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - start
    latencies.sort()
    return {
        "images_per_s": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
    }


def _best(runs: list[dict[str, float]]) -> dict[str, float]:
    return max(runs, key=lambda r: r["images_per_s"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style", help="style to serve (default: the first built-in multistyle sub-style)")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--clients", default="1,4,8")
    parser.add_argument("--requests", type=int, default=8, help="requests per client")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per side; the best is kept")
    parser.add_argument("--workers", type=int, default=None, help="scale the served model to N workers")
    parser.add_argument("--port", type=int, default=18480)
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument(
        "--runner",
        default="auto",
        choices=("auto", "compiled", "torchscript"),
        help="the runner of both sides (sdk.runners); compiled compiles into STYLEKIT_HOME first",
    )
    args = parser.parse_args(argv)

    import torch

    from sdk import imaging
    from sdk.allocator import keep_freed_memory
    from sdk.client import StyleClient
    from sdk.engine import Engine
    from sdk.registry import default_registry
    from sdk.serving import server
    from sdk.serving.archive import build_archive
    from sdk.wire import StyleRequest

    registry = default_registry()
    spec = (
        registry.get(args.style) if args.style else next(s for s in registry.list() if s.kind == "multistyle")
    )
    if spec.kind == "arbitrary":
        parser.error(
            "pick a feedforward or multistyle style (the arbitrary one needs a style image per request)"
        )
    resolved = registry.resolve(spec.name)  # the engine runs a resolved style, never a name
    images = photos_at(args.size, 16)
    levels = [int(c) for c in args.clients.split(",")]
    keep_freed_memory()  # as stylekit's entry points do (STYLEKIT_MALLOC=system opts out)
    # The same runner on both sides: the server's handler reads STYLEKIT_RUNNER, and a compiled
    # runner's kernels, built here first, are in the cache both read.
    os.environ["STYLEKIT_RUNNER"] = args.runner
    engine = Engine(device="cpu", runner=args.runner)

    def local(data: bytes) -> bytes:
        return imaging.encode(engine.stylize(data, resolved), "PNG")

    load_before = f"{os.getloadavg()[0]:.1f}"
    local(images[0])  # load and warm up, as the server's handler does at start
    rows = []
    with tempfile.TemporaryDirectory(prefix="stylekit-bench-") as tmp:
        info = build_archive(spec.package(), Path(tmp) / "store")
        model = info.name
        state = server.start(
            model_store=Path(tmp) / "store", models=model, port=args.port, worker_port=args.port + 1000,
            run_dir=Path(tmp) / "run",
        )  # fmt: skip
        try:
            client = StyleClient(state.inference_url, run_dir=state.run_dir, timeout=300)
            if args.workers is not None:
                client.scale(model, args.workers)
            workers = len(client.describe(model)["workers"])
            target = f"{model}:{spec.name}"

            def served(data: bytes) -> bytes:
                return client.send(data, StyleRequest(style=target))

            served(images[0])
            for clients in levels:
                # Alternate the two sides and keep each side's best round: on a shared machine
                # the load changes between runs, and the best round is the least disturbed one.
                local_runs, served_runs = [], []
                for _ in range(args.rounds):
                    local_runs.append(run_load(local, images, clients, args.requests))
                    served_runs.append(run_load(served, images, clients, args.requests))
                rows.append({"clients": clients, "local": _best(local_runs), "served": _best(served_runs)})
        finally:
            server.stop(state)

    print(f"load average before/after: {load_before} / {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"style {spec.name} ({model} archive, {workers} worker(s), "
        f"runner {engine.load(spec.package()).runner}), "
        f"{args.size}px JPEG in, PNG out, "
        f"{args.requests} requests per client, torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    header = (
        "clients",
        "local img/s",
        "p50 ms",
        "p99 ms",
        "served img/s",
        "p50 ms",
        "p99 ms",
        "overhead",
        "p99/p50",
    )
    print(" | ".join(f"{h:>12}" for h in header))
    for row in rows:
        lo, se = row["local"], row["served"]
        row["overhead"] = 1 - se["images_per_s"] / lo["images_per_s"]
        cells = (
            f"{row['clients']}", f"{lo['images_per_s']:.2f}", f"{lo['p50_ms']:.0f}", f"{lo['p99_ms']:.0f}",
            f"{se['images_per_s']:.2f}", f"{se['p50_ms']:.0f}", f"{se['p99_ms']:.0f}",
            f"{100 * row['overhead']:.1f}%", f"{se['p99_ms'] / se['p50_ms']:.2f}",
        )  # fmt: skip
        print(" | ".join(f"{c:>12}" for c in cells))
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
