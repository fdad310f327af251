"""Own styles against the arbitrary mode and the closest built-in, judged by ``stylekit eval``.

For each painting from ``../shared/data/styles``: train with the offline default (what
``stylekit train --style-image P --data PHOTOS --name N`` does on a CPU without VGG weights,
``training.recipes``) on the 50 COCO photos, then score, on the content photos the training
never saw, three things side by side:

- ``own``: the style just trained;
- ``arbitrary``: the built-in arbitrary network given the same painting (the peer to beat);
- ``closest``: the built-in style the new one started from.

Printed per painting: the CPU time of training (user + system, all threads) and the mean
``training.evaluate`` scores; then whether ``own`` is at least as good as ``arbitrary`` on each.
``--sheet FILE`` writes a picture: painting | photo | own | arbitrary, one row per painting.

    nice -n 10 .venv/bin/python benchmarks/train_quality.py [--paintings wave the_scream ...] \\
        [--steps N] [--image-size N] [--threads 2] [--sheet docs/own_styles.jpg]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training import evaluate as ev  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.export import export_trained  # noqa: E402
from training.trainer import Trainer  # noqa: E402

DATA = Path(os.environ.get("STYLEKIT_TEST_DATA", REPO.parent / "shared" / "data"))
HIGHER = ("style_similarity", "style_gain", "edges_kept")  # lower is better for the others


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def row(name: str, s: ev.Scores, extra: str = "") -> str:
    cells = "  ".join(f"{getattr(s, n):>9.3f}" for n in ev.Scores.names())
    return f"  {name:<22} {cells}  {extra}"


def main() -> int:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=fmt)
    parser.add_argument("--paintings", nargs="+", default=["wave", "the_scream", "composition_vii"])
    parser.add_argument("--steps", type=int, help="default: the offline recipe's")
    parser.add_argument("--image-size", type=int, help="default: the offline recipe's")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--sheet", type=Path, help="write painting | photo | own | arbitrary rows here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.pop("STYLEKIT_VGG_WEIGHTS", None)  # the offline default: no VGG weights here

    photos = sorted(p for p in (DATA / "content").iterdir() if p.suffix.lower() in {".jpg", ".png"})
    print(f"{len(photos)} held-out photos from {DATA / 'content'}; training on {DATA / 'photos'}; "
          f"{torch.get_num_threads()} threads, CPU {torch.backends.cpu.get_cpu_capability()}")  # fmt: skip
    print("  " + " " * 22 + " " + "  ".join(f"{n[:9]:>9}" for n in ev.Scores.names()))
    sheet_rows: list[tuple[Any, ...]] = []
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STYLEKIT_HOME"] = str(Path(tmp) / "home")
        for painting_name in args.paintings:
            painting = DATA / "styles" / f"{painting_name}.jpg"
            name = painting_name.replace("_", "-") + "-own"
            cfg = TrainConfig(style_image=painting, data=DATA / "photos", name=name, out=Path(tmp) / name,
                              steps=args.steps, image_size=args.image_size, install=False,
                              tensorboard=False, progress=False)  # fmt: skip
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            trainer = Trainer(cfg)
            trainer.fit()
            package, _ = export_trained(trainer)
            cpu, wall = cpu_seconds() - cpu0, time.perf_counter() - wall0
            chosen = trainer.config
            init = trainer.extension.init if trainer.extension else ""
            closest = init.split(":", 1)[1] if init.startswith("closest:") else None
            print(f"{painting.name}: {chosen.loss_network}, extend {chosen.extend}, distill "
                  f"{chosen.distill_weight:g}, {trainer.step} steps at {chosen.image_size} px: "
                  f"{cpu / 60:.1f} CPU-min, {wall / 60:.1f} min wall")  # fmt: skip
            own, own_out = ev.evaluate_style(package.model_path, photos, painting)
            arb, arb_out = ev.evaluate_style("arbitrary", photos, painting)
            print(row("own", own.mean, f"quality {own.mean.quality:.3f}"))
            print(row("arbitrary", arb.mean, f"quality {arb.mean.quality:.3f}"))
            if closest:
                near, _ = ev.evaluate_style(closest, photos, painting)
                print(row(f"closest ({closest})", near.mean, f"quality {near.mean.quality:.3f}"))
            wins = {
                n: (getattr(own.mean, n) >= getattr(arb.mean, n)) == (n in HIGHER)
                or getattr(own.mean, n) == getattr(arb.mean, n)
                for n in ev.Scores.names()
            }
            verdicts.append((painting.name, cpu, wins))
            sheet_rows.append((painting, photos[0], own_out[0], arb_out[0]))

    print("\nown >= arbitrary (per score):")
    for painting_name, cpu, wins in verdicts:
        marks = ", ".join(f"{n} {'yes' if ok else 'no'}" for n, ok in wins.items())
        print(f"  {painting_name} ({cpu / 60:.1f} CPU-min): {marks}")
    if args.sheet is not None:
        cell = 256
        sheet = Image.new("RGB", (4 * cell, len(sheet_rows) * cell), "white")
        for r, images in enumerate(sheet_rows):
            for c, img in enumerate(images):
                im = Image.fromarray(ev.work_picture(img))
                im.thumbnail((cell, cell))
                sheet.paste(im, (c * cell + (cell - im.width) // 2, r * cell + (cell - im.height) // 2))
        sheet.save(args.sheet, quality=88)
        print(f"sheet: {args.sheet} (painting | photo | own | arbitrary)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
