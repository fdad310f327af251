"""``stylekit export SOURCE [--format F]``: a style package, in TorchScript and beyond.

``SOURCE`` is a training checkpoint (``RUN/checkpoints/last.pt``: it becomes a style package),
a style package (its ``.json``, ``.pt`` or folder), or the name of a registered style (its
package; one installed with stylekit or a plugin is written to ``--out``, never changed in
place). ``--format``: ``torchscript`` (the package itself, always written), ``pt2``, ``onnx``
or ``all``; repeat it or give a comma list. Each file is verified against the eager network
on the sample picture and every ``--photo`` before the manifest pins it
(``training.artifacts``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sdk.package import ARTIFACT_FORMATS


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "source", help="a training checkpoint, a style package (.json, .pt or folder) or a style name"
    )
    parser.add_argument(
        "--format",
        action="append",
        metavar="FORMAT",
        help=f"{', '.join(ARTIFACT_FORMATS)} or all (default torchscript); repeat or comma-separate",
    )
    parser.add_argument("--out", type=Path, help="folder for the package (default: beside the source)")
    parser.add_argument(
        "--photo",
        action="append",
        default=[],
        type=Path,
        metavar="PHOTO",
        help="also verify each export on this picture (repeatable)",
    )
    parser.add_argument("--name", help="checkpoint: style name (default: the name it was trained under)")
    parser.add_argument(
        "--no-install", action="store_true", help="checkpoint: do not install into $STYLEKIT_HOME"
    )


def _is_package(path: Path) -> bool:
    """A folder or manifest, or a ``.pt`` with its manifest beside it (a checkpoint has none)."""
    return path.is_dir() or path.suffix == ".json" or path.with_suffix(".json").is_file()


def run(args: argparse.Namespace) -> int:
    from sdk.errors import BadOptionError
    from sdk.extras import require
    from sdk.package import StylePackage, read_package
    from training.artifacts import export_package, installed_copy_needed, parse_formats

    formats = parse_formats(args.format or ())
    source = Path(args.source)
    packages: list[StylePackage] = []
    if source.exists() and not _is_package(source):
        require("train", "stylekit export CHECKPOINT")
        from training.export import export_checkpoint

        package, installed = export_checkpoint(
            source, name=args.name, out_dir=args.out, install=not args.no_install
        )
        packages = [p for p in (package, installed) if p is not None]
        out = None  # the packages were just written where they belong
    else:
        if args.name or args.no_install:
            raise BadOptionError("--name and --no-install apply to a checkpoint, not to a style package.")
        if source.exists():
            package = read_package(source)
        else:
            from sdk.registry import default_registry

            package = default_registry().package_named(args.source)
        if args.out is None and installed_copy_needed(package):
            raise BadOptionError(
                f"Style {package.manifest.name!r} is installed with stylekit ({package.root}); "
                "give --out DIR to write an exported copy."
            )
        packages, out = [package], args.out
    for i, package in enumerate(packages):
        written = export_package(package, formats, out_dir=out, photos=args.photo)
        if i == 0:
            for file, art in written.manifest.artifacts.items():
                check = art.verified or {}
                mark = f"max {check['max_255']:.3f}/255" if "max_255" in check else "not verified"
                print(f"{art.format:<11} {art.method:<12} {written.root / file} ({mark})")
        else:
            print(f"installed as style {written.manifest.name!r} in {written.root}")
    return 0
