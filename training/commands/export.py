"""``stylekit export CHECKPOINT``: turn any training checkpoint into a style package."""

from __future__ import annotations

import argparse
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="a training checkpoint (RUN/checkpoints/last.pt)")
    parser.add_argument("--name", help="style name (default: the name it was trained under)")
    parser.add_argument("--out", type=Path, help="folder for the package (default: the run folder)")
    parser.add_argument("--no-install", action="store_true", help="do not install into $STYLEKIT_HOME")


def run(args: argparse.Namespace) -> int:
    from training.export import export_checkpoint

    package, installed = export_checkpoint(
        args.checkpoint, name=args.name, out_dir=args.out, install=not args.no_install
    )
    print(f"style package: {package.model_path}")
    if installed is not None:
        print(f"installed as style {installed.manifest.name!r} in {installed.root}")
    return 0
