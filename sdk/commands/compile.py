"""``stylekit compile [STYLE...]``: compile styles' kernels into this machine's cache ahead of time.

The engine's default runner (``auto``) uses compiled kernels only when the cache already has
them, so no stylize call pays a compile; this command pays it once per machine, torch version,
device and dtype (see :mod:`sdk.runners`). One line per style package: ``compiled`` with the
seconds taken, ``cached`` when it was already there, or why TorchScript will run it.
"""

from __future__ import annotations

import argparse
import json
import time


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "styles", nargs="*", metavar="STYLE", help="registered style names (default: every style)"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--list", action="store_true", help="print the cache's entries as JSON and exit")


def run(args: argparse.Namespace) -> int:
    from sdk import api, runners
    from sdk.package import StylePackage
    from sdk.registry import default_registry

    if args.list:
        print(json.dumps(runners.cached_entries(), indent=2))
        return 0
    registry = default_registry()
    names = args.styles or [spec.name for spec in registry.list()]
    packages: dict[tuple[str, str], StylePackage] = {}
    for name in names:
        package = registry.package_named(name)
        packages.setdefault((str(package.root), package.manifest.model_file), package)
    engine = api.engine(args.device, runner="compiled")
    for package in packages.values():
        dtype = engine.dtype_for(package)
        before = runners.cache_status(package, engine.device, dtype)
        start = time.perf_counter()
        model = engine.load(package)
        seconds = time.perf_counter() - start
        name = package.manifest.name
        if before == "cached":
            print(f"{name}: cached ({engine.device}, {str(dtype).removeprefix('torch.')})")
        elif model.runner == "compiled":
            print(
                f"{name}: compiled in {seconds:.0f} s ({engine.device}, {str(dtype).removeprefix('torch.')})"
            )
        elif before == "no-program":
            print(
                f"{name}: no pt2 program, TorchScript runs it (stylekit export {name} --format pt2 adds one)"
            )
        else:
            print(f"{name}: compiling failed, TorchScript runs it (run with -v for the reason)")
    print(f"cache: {runners.cache_root()}")
    return 0
