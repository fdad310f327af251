"""Peak memory and time to stylize a big photo on the CPU with automatic tiling.

Each measurement runs in its own subprocess, which reports its own peak RSS, so one run cannot
inflate another's figure:

- ``floor``: import torch, load the style, decode the photo (everything but the stylization);
- ``tiled``: ``Engine(device="cpu").stylize(photo, style)``: tiles of ``--tile`` pixels,
  chosen automatically because the photo is over the engine's pixel budget;
- ``untiled`` (with ``--untiled``): the same photo through the model in one piece, the
  baseline that tiling replaces (needs far more memory).

The tiled run is repeated ``--repeat`` times (default 3), each in a fresh process: with
``keep_freed_memory()`` in effect (as the entry points have it) the peak depends on how glibc
happens to fit each tile's activations into the memory earlier tiles freed, and varies by
a few hundred MB from one identical run to the next. The goal (< 1.2 GB peak RSS) is checked
against the highest. ``STYLEKIT_MALLOC=system`` in the environment measures without it.

The photo is a content image from ../shared/data upscaled to ``--size`` (6000x4000) in memory
and JPEG-encoded, so decoding is part of the run as it would be for a real camera file.

The style is a built-in (``--style``, default: the first sub-style of ``multistyle26``) when the
built-in packages are installed; otherwise a package is made on the fly from the 26-style
network's pretrained ONNX weights (``training.pretrained``, needs the dev extra).

``--channels-last`` instead times the generator (float32) on one tile-sized input in the
default NCHW layout and in ``channels_last`` on ``--device`` (default cpu) and prints the ratio:
the measurement behind the engine's layout choice.

    nice -n 10 .venv/bin/python benchmarks/big_image_memory.py [--repeat N] [--untiled] [--channels-last]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GOAL_MB = 1.2 * 1024  # peak RSS goal for the tiled 6000x4000 run (issue 12)
DATA = Path(os.environ.get("STYLEKIT_TEST_DATA", REPO.parent / "shared" / "data"))


def _style_package(style: str | None, workdir: Path) -> tuple[Any, str]:
    """(StyleSpec or package path, description) for the style to run."""
    from sdk.registry import StyleSpec, default_registry

    reg = default_registry()
    if style is not None:
        spec = reg.get(style)
        return spec, f"{spec.name} ({spec.origin})"
    multi = [s for s in reg.list() if s.kind == "multistyle" and s.metadata.get("package") == "multistyle26"]
    if multi:
        return multi[0], f"{multi[0].name} (built-in multistyle26)"
    import torch

    from sdk.package import InputContract, Manifest, SubStyle, write_package
    from training.pretrained.multistyle import NUM_STYLES, from_onnx

    manifest = Manifest(
        "bench-multistyle26",
        "multistyle",
        "bench.pt",
        input=InputContract(multiple=4),
        styles=tuple(SubStyle(i, f"style-{i}") for i in range(NUM_STYLES)),
    )
    pkg = write_package(torch.jit.script(from_onnx().eval()), workdir, manifest)
    spec = StyleSpec("style-0", "multistyle", lambda: pkg, metadata={"index": 0})
    return spec, "multistyle26 sub-style 0 (package made from the ONNX weights)"


def _make_photo(width: int, height: int) -> bytes:
    from PIL import Image

    with Image.open(sorted((DATA / "content").glob("*.jpg"))[0]) as im:
        big = im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def child(args: argparse.Namespace) -> None:
    """Runs in the subprocess: one measurement, printed as one JSON line."""
    import torch

    from sdk import imaging
    from sdk.allocator import keep_freed_memory
    from sdk.engine import Engine
    from sdk.registry import default_registry

    photo = Path(args.photo).read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        style, about = _style_package(args.style, Path(tmp))
        keep_freed_memory()  # as stylekit's entry points do (STYLEKIT_MALLOC=system opts out)
        budget = 2048 * 2048 if args.mode != "untiled" else 10**12
        device = args.device if args.mode == "channels_last" else "cpu"
        engine = Engine(device=device, half=False, pixel_budget=budget, tile=args.tile, overlap=args.overlap)
        resolved = default_registry().resolve(style)
        model = engine.load(resolved.package)
        result: dict[str, Any] = {"mode": args.mode, "style": about, "threads": torch.get_num_threads()}
        result["device"] = str(engine.device)
        if args.mode == "channels_last":
            result.update(_time_layouts(model, resolved.weights, args.tile + 2 * args.overlap))
        elif args.mode == "floor":
            decoded = imaging.decode(photo)
            result["size"] = decoded.size
        else:
            start = time.perf_counter()
            out = engine.stylize(photo, resolved)
            result["seconds"] = time.perf_counter() - start
            result["size"] = out.size
            if args.save:
                out.save(args.save)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    result["cpu_s"] = usage.ru_utime + usage.ru_stime  # on a shared machine, steadier than wall time
    print(json.dumps(result))


def _time_layouts(model: Any, weights: Any, side: int) -> dict[str, float]:
    import torch

    x = torch.rand(1, 3, side, side, device=model.device)
    row = torch.tensor([list(weights)], device=model.device) if weights is not None else None

    def run(module: Any, inp: torch.Tensor) -> float:
        times = []
        with torch.inference_mode():
            for _ in range(4):
                start = time.perf_counter()
                module(inp, row) if row is not None else module(inp)
                if inp.is_cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        return statistics.median(times[1:])

    nchw = run(model.module, x)
    cl_module = model.module.to(memory_format=torch.channels_last)
    channels_last = run(cl_module, x.contiguous(memory_format=torch.channels_last))
    return {"side": side, "nchw_s": nchw, "channels_last_s": channels_last, "ratio": channels_last / nchw}


def _spawn(args: argparse.Namespace, mode: str, photo: Path) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--photo", str(photo), "--tile", str(args.tile)]
    cmd += ["--overlap", str(args.overlap), "--device", args.device]
    if args.style:
        cmd += ["--style", args.style]
    if args.save and mode == "tiled":
        cmd += ["--save", args.save]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=False)
    if proc.returncode != 0:
        sys.exit(f"{mode} run failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="6000x4000", help="photo size WxH (default 6000x4000)")
    parser.add_argument("--style", help="style name (default: first multistyle26 sub-style)")
    parser.add_argument("--tile", type=int, default=768, help="tile size (the engine's default: 768)")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument(
        "--repeat", type=int, default=3, help="tiled runs, each in a fresh process (default 3)"
    )
    parser.add_argument("--untiled", action="store_true", help="also run the whole photo untiled (baseline)")
    parser.add_argument("--channels-last", action="store_true", help="time NCHW vs channels_last on a tile")
    parser.add_argument("--device", default="cpu", help="device for --channels-last (cpu, cuda, ...)")
    parser.add_argument("--save", help="write the tiled result here (e.g. /tmp/big.jpg) to look at it")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--photo", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.mode = args.child
        child(args)
        return

    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        photo = Path(tmp) / "photo.jpg"
        photo.write_bytes(_make_photo(width, height))
        if args.channels_last:
            r = _spawn(args, "channels_last", photo)
            print(f"style: {r['style']}; device {r['device']}; CPU threads: {r['threads']}")
            print(
                f"one {r['side']}x{r['side']} tile: NCHW {r['nchw_s']:.3f} s, channels_last "
                f"{r['channels_last_s']:.3f} s, ratio {r['ratio']:.2f} (<1: channels_last faster)"
            )
            return
        print(
            f"photo: {width}x{height} JPEG, {photo.stat().st_size / 2**20:.1f} MB; tile {args.tile}, "
            f"overlap {args.overlap}; malloc: {os.environ.get('STYLEKIT_MALLOC') or 'keep freed memory'}"
        )
        floor = _spawn(args, "floor", photo)
        tiled = [_spawn(args, "tiled", photo) for _ in range(max(1, args.repeat))]
        untiled = [_spawn(args, "untiled", photo)] if args.untiled else []
    print(f"style: {floor['style']}; CPU threads: {floor['threads']}")
    print(f"{'run':<10}{'peak RSS':>12}{'wall':>10}{'CPU (whole process)':>22}")
    for r in [floor, *tiled, *untiled]:
        seconds = f"{r['seconds']:.1f} s" if "seconds" in r else "-"
        print(f"{r['mode']:<10}{r['peak_rss_mb']:>9.0f} MB{seconds:>10}{r['cpu_s']:>20.1f} s")
    peaks = sorted(r["peak_rss_mb"] for r in tiled)
    worst = peaks[-1]
    verdict = "met" if worst < GOAL_MB else "NOT met"
    print(
        f"tiled peak RSS: {worst / 1024:.2f} GB at most (median {statistics.median(peaks) / 1024:.2f} GB "
        f"of {len(peaks)}), goal < {GOAL_MB / 1024:.1f} GB: {verdict}; "
        f"{worst - floor['peak_rss_mb']:.0f} MB above the floor"
    )
    if untiled:
        best = min(tiled, key=lambda r: r["seconds"])
        print(
            f"ratio tiled/untiled: peak RSS {worst / untiled[0]['peak_rss_mb']:.2f}, "
            f"time {best['seconds'] / untiled[0]['seconds']:.2f}"
        )


if __name__ == "__main__":
    main()
