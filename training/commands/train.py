"""``stylekit train``: train a new style from one painting and a folder of photos.

The same flags work under torchrun (``torchrun --nproc_per_node N -m training ...``).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from training.config import AMP_MODES, TrainConfig
from training.loss_networks import LOSS_NETWORKS, VGG_WEIGHTS_ENV


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in _names(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def configure(parser: argparse.ArgumentParser) -> None:
    need = parser.add_argument_group("what to train")
    need.add_argument("--style-image", type=Path, required=True, help="the painting (any image file)")
    need.add_argument("--data", type=Path, required=True, help="folder (tree) of training photos, e.g. COCO")
    need.add_argument("--name", required=True, help="style name: lowercase letters, digits, dashes")
    need.add_argument("--out", type=Path, help="run folder (default runs/NAME)")
    need.add_argument(
        "--extend", metavar="MULTISTYLE",
        help="instead of a new generator, add the style to this multistyle network (e.g. multistyle26) "
        "by training only its conditional-norm parameters",
    )  # fmt: skip
    need.add_argument(
        "--extend-init", choices=("closest", "mean"), default="closest",
        help="--extend: start the new style from the closest existing one or from their mean",
    )  # fmt: skip

    length = parser.add_argument_group("length").add_mutually_exclusive_group()
    length.add_argument("--epochs", type=int, help="passes over the data (default 2)")
    length.add_argument("--steps", type=int, help="optimizer steps in total (instead of --epochs)")

    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--batch-size", type=int, default=4)
    opt.add_argument("--image-size", type=int, default=256, help="training crop side (multiple of 4)")
    opt.add_argument("--style-size", type=int, help="long side of the style image (default --image-size)")
    opt.add_argument("--lr", type=float, help="Adam learning rate (default 1e-3; 1e-2 with --extend)")
    opt.add_argument("--width", type=float, default=1.0, help="generator width multiplier (0.25 .. 1)")
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--center-crop", action="store_true", help="centre crops instead of random crops")

    loss = parser.add_argument_group("losses (unset = the loss network's defaults)")
    loss.add_argument(
        "--loss-network", choices=("auto", *LOSS_NETWORKS), default="auto",
        help="auto: vgg19 on a GPU or with its weights here; on a CPU without them the offline "
             "recipe (mobilenet, --extend multistyle26, --distill-weight 2000, 150 steps)",
    )  # fmt: skip
    loss.add_argument(
        "--vgg-weights", type=Path,
        help=f"torchvision VGG state dict for offline machines (or set {VGG_WEIGHTS_ENV})",
    )  # fmt: skip
    loss.add_argument("--no-download", action="store_true", help="never download VGG weights")
    loss.add_argument("--content-weight", type=float)
    loss.add_argument("--style-weight", type=float)
    loss.add_argument("--tv-weight", type=float)
    loss.add_argument("--content-layers", type=_names, help="comma-separated, e.g. relu4_2")
    loss.add_argument("--style-layers", type=_names, help="comma-separated, e.g. relu1_1,relu2_1")
    loss.add_argument("--style-layer-weights", type=_floats, help="comma-separated, one per style layer")
    loss.add_argument(
        "--adversarial-weight", type=float, default=0.0,
        help="weight of the patch-discriminator loss (0 = off)",
    )  # fmt: skip

    loss.add_argument(
        "--distill-weight",
        type=float,
        default=0.0,
        help="also pull toward the built-in arbitrary network's rendering of each photo (L1)",
    )

    run_group = parser.add_argument_group("running")
    run_group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps")
    run_group.add_argument("--amp", choices=AMP_MODES, default="auto", help="mixed precision")
    run_group.add_argument("--no-channels-last", action="store_true")
    run_group.add_argument("--workers", type=int, help="data loader workers (default 0 on CPU, 4 on GPU)")
    run_group.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    run_group.add_argument("--log-every", type=int, default=20, help="steps between log lines")
    run_group.add_argument(
        "--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
        help="continue from OUT/checkpoints/last.pt (or the given checkpoint)",
    )  # fmt: skip
    run_group.add_argument("--no-install", action="store_true", help="do not install into $STYLEKIT_HOME")
    run_group.add_argument("--no-tensorboard", action="store_true")
    run_group.add_argument("--no-progress", action="store_true", help="no progress bar")
    run_group.add_argument(
        "--eval-photos", type=Path,
        help="held-out photos (folder or file) scored with `stylekit eval` at every checkpoint",
    )  # fmt: skip
    run_group.add_argument(
        "--keep-best", action="store_true", help="also keep checkpoints/best.pt, the best-scoring checkpoint"
    )


# Fields whose flag has another name: field -> (flag's dest, whether the flag negates it).
_FLAGS = {"random_crop": ("center_crop", True), "num_workers": ("workers", False)}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Every flag is a TrainConfig field: ``--x-y`` is ``x_y``, ``--no-x`` is ``x=False``."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(TrainConfig):
        dest, negate = _FLAGS.get(field.name, (field.name, False))
        if not hasattr(args, dest) and hasattr(args, f"no_{dest}"):
            dest, negate = f"no_{dest}", True
        if hasattr(args, dest):
            value = getattr(args, dest)
            values[field.name] = not value if negate else value
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from sdk.allocator import keep_freed_memory

    # Each step allocates its activations afresh: reusing freed memory instead of page-faulting
    # it in again is ~15% more images/s on a CPU (sdk.allocator). A process-wide choice, so the
    # entry point makes it, not the Trainer.
    keep_freed_memory()
    from training.trainer import Trainer

    config = config_from_args(args)
    if config.progress and not sys.stderr.isatty():
        # No terminal for a bar: the trainer's one line per --log-every steps is the progress.
        logging.getLogger("training.trainer").setLevel(logging.INFO)

    trainer = Trainer(config)
    try:
        result = trainer.fit()
    finally:
        trainer.close()
    if not trainer.dist.is_main:
        return 0
    package = installed = None
    if not result.interrupted:
        from training.export import export_trained

        package, installed = export_trained(trainer)
    if result.interrupted:
        print(f"stopped at step {result.steps}; checkpoint {result.checkpoint} (continue with --resume)")
        return 128 + int(result.stop_signal or signal.SIGINT)
    losses = ", ".join(f"{k} {v:.4g}" for k, v in result.losses.items() if k != "images_per_second")
    print(f"trained {result.steps} steps, {result.images_per_second:.2f} images/s ({losses})")
    if result.skipped_files:
        print(f"skipped {len(result.skipped_files)} unreadable image(s)")
    if package is not None:
        print(f"style package: {package.model_path}")
    new = trainer.extension
    if new is not None:
        print(f"added {args.name!r} as row {new.row.index} of {new.base.manifest.name} (from {new.init})")
    if installed is not None:
        print(f"installed as style {installed.manifest.name!r} in {installed.root}")
    return 0

