"""Stroke size (``scale=``): how large the strokes get, how sharp the result stays, what it costs.

For each content photo of ``../shared/data/content`` (or ``STYLEKIT_TEST_DATA``) at ``--side``
pixels wide and each style, at each scale:

- ``stroke``: :func:`training.evaluate.stroke_frequency`, the peak of the output's radially
  averaged power spectrum relative to the photo's, in cycles per pixel (lower: larger strokes);
- ``edge SSIM``: :func:`training.evaluate.edge_ssim` against the photo, for stylekit's guided
  upsampling and, side by side, for the peer way of getting larger strokes: paint a smaller
  copy and resize the painting up (bicubic), as one does with pytorch/examples'
  fast_neural_style or any fixed-resolution model; and their difference;
- ``s``: the wall time of ``sdk.stylize(..., scale=S)``, best of ``--repeat``, and its ratio to
  scale 1 (the network paints 1/S^2 of the pixels; the guided upsampling is the rest).

``--figure PATH`` also writes the README's figure: one photo (chicago.jpg, 712 px wide) at
scales 1, 2 and 3, a soft mask, the masked result (photo outside) and two styles by that mask.

Usage: ``.venv/bin/python benchmarks/stroke_scale.py [--side 768] [--figure docs/scales.jpg]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import sdk  # noqa: E402
from sdk import imaging  # noqa: E402
from training.evaluate import edge_ssim, stroke_frequency  # noqa: E402

DATA = Path(os.environ.get("STYLEKIT_TEST_DATA", REPO.parent / "shared" / "data"))
STYLES = ("starry-night", "fiery-brushstrokes", "navy-dots")
SCALES = (1.0, 2.0, 4.0)


def load(path: Path, side: int) -> np.ndarray:
    im = Image.open(path).convert("RGB")
    return np.asarray(im.resize((side, round(side * im.height / im.width)), Image.Resampling.LANCZOS))


def timed(repeat: int, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return out, best


def measure(side: int, repeat: int) -> None:
    photos = sorted((DATA / "content").glob("*.jpg"))
    print(f"{len(photos)} photos at {side} px wide, styles {', '.join(STYLES)}; stylekit guided "
          "upsampling vs paint-small-then-bicubic-resize")  # fmt: skip
    print(f"{'photo':<18}{'style':<20}{'scale':>6}{'stroke':>8}{'edge SSIM':>11}{'resize':>8}{'diff':>7}"
          f"{'s':>8}{'vs 1':>6}")  # fmt: skip
    diffs: dict[float, list[float]] = {s: [] for s in SCALES[1:]}
    for path in photos:
        photo = load(path, side)
        for style in STYLES:
            sdk.stylize(photo[:64, :64], style)  # load the network before timing
            base_s = 0.0
            for scale in SCALES:
                out, seconds = timed(repeat, sdk.stylize, photo, style, scale=scale)
                result = np.asarray(out)
                mine = edge_ssim(photo, result)
                if scale == 1.0:
                    base_s, peer, diff = seconds, "", ""
                else:
                    small = imaging.resize_rgb(
                        photo, imaging.work_size((photo.shape[1], photo.shape[0]), scale)
                    )
                    painted = np.asarray(sdk.stylize(small, style))
                    resized = np.asarray(
                        Image.fromarray(painted).resize(photo.shape[1::-1], Image.Resampling.BICUBIC)
                    )
                    theirs = edge_ssim(photo, resized)
                    diffs[scale].append(mine - theirs)
                    peer, diff = f"{theirs:.3f}", f"{mine - theirs:+.3f}"
                stroke = stroke_frequency(result, photo)
                print(f"{path.stem:<18}{style:<20}{scale:>6g}{stroke:>8.3f}{mine:>11.3f}"
                      f"{peer:>8}{diff:>7}{seconds:>8.3f}{seconds / base_s:>6.2f}")  # fmt: skip
    for scale, values in diffs.items():
        print(f"scale {scale:g}: guided minus resize edge SSIM: min {min(values):+.3f}, "
              f"mean {np.mean(values):+.3f}, max {max(values):+.3f} over {len(values)} pairs")  # fmt: skip


def figure(path: Path, side: int, cell: int = 400) -> None:
    """Painted at ``side`` pixels wide, shown at ``cell``."""
    photo = load(DATA / "content" / "chicago.jpg", side)
    h, w = photo.shape[:2]
    # A soft ellipse over the skyline: the style inside, the photo (or a second style) outside.
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).ellipse((w * 0.08, h * 0.12, w * 0.72, h * 1.05), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(side / 40))
    cells = [(sdk.stylize(photo, "starry-night", scale=s), f"scale={s:g}") for s in (1, 2, 3)]
    cells += [
        (mask.convert("RGB"), "mask"),
        (sdk.stylize(photo, "starry-night", mask=mask), "mask=, photo outside"),
        (sdk.stylize(photo, "starry-night", mask=mask, outside="ink-and-yellow"), "outside=ink-and-yellow"),
    ]
    shown = (cell, round(cell * h / w))
    cells = [(img.convert("RGB").resize(shown, Image.Resampling.LANCZOS), text) for img, text in cells]
    (w, h), pad, label = shown, 6, 22
    sheet = Image.new("RGB", (3 * w + 4 * pad, 2 * (h + label) + 3 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (img, text) in enumerate(cells):
        x, y = pad + (i % 3) * (w + pad), pad + (i // 3) * (h + label + pad)
        sheet.paste(img, (x, y + label))
        draw.text((x + 2, y + 4), text, fill="black")
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=88)
    print(f"wrote {path} ({sheet.size[0]}x{sheet.size[1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=768, help="photo width for the measurements")
    parser.add_argument("--repeat", type=int, default=3, help="timing: best of this many runs")
    parser.add_argument("--figure", type=Path, help="also write the README figure here")
    parser.add_argument("--figure-only", action="store_true", help="only write the figure")
    args = parser.parse_args()
    if not args.figure_only:
        measure(args.side, args.repeat)
    if args.figure:
        figure(args.figure, 712)


if __name__ == "__main__":
    main()
