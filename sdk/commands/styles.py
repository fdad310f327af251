"""``stylekit styles [--json] [PATTERN]``: list the styles this installation knows.

Plugins that fail to load, duplicate names and broken packages are listed on stderr (one
line each); the styles that did load are still shown.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "pattern", nargs="?", metavar="PATTERN", help="glob on names and aliases, e.g. 'wave*'"
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON array (all fields) instead of a table"
    )


def run(args: argparse.Namespace) -> int:
    from sdk.api import list_styles
    from sdk.registry import default_registry

    registry_log = logging.getLogger("sdk.registry")
    if not registry_log.isEnabledFor(logging.INFO):
        # Discovery problems are printed below, one line each; without -v, don't log them twice.
        registry_log.setLevel(logging.ERROR)
    infos = list_styles(args.pattern)
    for error in default_registry().errors:
        print(f"stylekit: warning: {error.message}", file=sys.stderr)
    if args.json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
        return 0
    if not infos:
        what = f"matches {args.pattern!r}" if args.pattern else "is installed"
        print(f"stylekit: no style {what}", file=sys.stderr)
        return 0
    rows = [("NAME", "ALIASES", "KIND", "LICENSE", "ORIGIN", "DESCRIPTION")]
    for info in infos:
        # Paths make the origin column wide; the full origin is in --json.
        origin = info.origin if info.origin.startswith("plugin:") else info.origin.split(":", 1)[0]
        rows.append((info.name, ",".join(info.aliases), info.kind, info.license, origin, info.description))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    columns = shutil.get_terminal_size((120, 24)).columns
    for row in rows:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
        print(line[:columns].rstrip() if sys.stdout.isatty() else line.rstrip())
    return 0
