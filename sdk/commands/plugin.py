"""``stylekit plugin new``: write a style plugin distribution from style packages.

The command's options and output; the work is :mod:`sdk.plugin`'s.
"""

from __future__ import annotations

import argparse
import shlex


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = sub.add_parser(
        "new", help="write an installable plugin distribution holding style packages",
        description="Write NAME/ (pyproject.toml, the package with the styles, README.md); "
        "install it with pip install NAME/.",
    )  # fmt: skip
    new.add_argument("name", metavar="NAME", help="the distribution's name (e.g. stylekit-ukiyo)")
    new.add_argument(
        "--from", dest="packages", nargs="+", required=True, metavar="PACKAGE",
        help="style packages (.pt/.json) to ship; each keeps its name",
    )  # fmt: skip
    new.add_argument("-o", "--out", help="folder to write (default ./NAME); must not exist or be empty")
    new.add_argument("--version", default="0.1.0", help="the distribution's version (default 0.1.0)")
    new.add_argument(
        "--description", default="",
        help="one-line summary; with one single-style package also that style's description",
    )  # fmt: skip
    new.add_argument(
        "--license", default="", help="SPDX expression: the distribution's and any style's that names none"
    )
    new.add_argument("--author", default="", help="the distribution's author")


def run(args: argparse.Namespace) -> int:
    from sdk.plugin import new_plugin

    plugin = new_plugin(
        args.name, args.packages, args.out, version=args.version, description=args.description,
        license=args.license, author=args.author,
    )  # fmt: skip
    names = ", ".join(s.name for s in plugin.styles)
    print(f"Wrote the style plugin {plugin.distribution} ({names}) to {plugin.root}")
    print(f"Install it with: pip install {shlex.quote(str(plugin.root))}")
    return 0
