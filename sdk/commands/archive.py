"""``stylekit archive``: pack style packages as TorchServe model archives (``.mar``).

The command's options and output; the work is :mod:`sdk.serving.archive`'s.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from sdk.serving.archive import build_archive, packages_for


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "packages", nargs="*", metavar="PACKAGE", help="style package (.pt/.json) or style name"
    )
    parser.add_argument(
        "--all", action="store_true", help="every registered style package (built-ins included)"
    )
    parser.add_argument(
        "-o", "--output", default="model_archives", help="model store (default model_archives)"
    )
    parser.add_argument(
        "--config-dir",
        help="folder of <name>.yaml / default.yaml model configs (default: the ones stylekit ships)",
    )
    parser.add_argument(
        "--no-force", action="store_true", help="fail instead of overwriting an existing archive"
    )


def run(args: argparse.Namespace) -> int:
    infos = [
        build_archive(pkg, args.output, config_dir=args.config_dir, force=not args.no_force)
        for pkg in packages_for(list(args.packages), args.all)
    ]
    print(json.dumps([asdict(info) for info in infos], indent=2))
    return 0
