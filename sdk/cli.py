"""The ``stylekit`` command.

Each subcommand lives in its own module, imported only when that subcommand runs: the
stylize path must not pay for torchvision, onnx or ``training`` (see README, "Speed").
A subcommand module provides ``configure(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from sdk.errors import StylekitError

# name -> (module, one-line help). Order is the order shown by ``stylekit --help``.
COMMANDS: dict[str, tuple[str, str]] = {
    "stylize": ("sdk._cli_stylize", "stylize images or folders with a style"),
    "styles": ("sdk._cli_styles", "list the available styles"),
    "train": ("training.cli", "train a new style (residual generator, perceptual loss)"),
    "export": ("training.cli_export", "export a training checkpoint as a style package"),
    "import-pretrained": ("training.pretrained.cli", "rebuild the built-in styles from the ONNX originals"),
    "archive": ("sdk.serving.archive", "pack style packages as TorchServe model archives"),
    "serve": ("sdk.serving.server", "start, check or stop a local TorchServe"),
    "web": ("sdk.web.cli", "run the web demo"),
}


# Commands whose process may skip Python's teardown once their output is flushed: unloading
# torch's extension modules costs ~0.45 s of a ~2.5 s ``stylekit stylize`` (measured, README).
# Only commands that register no atexit work of their own belong here.
FAST_EXIT = frozenset({"stylize", "styles"})


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylekit",
        description="Fast neural style transfer.",
        epilog="Run 'stylekit COMMAND --help' for a command's options.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _split(argv: Sequence[str]) -> tuple[int, list[str]]:
    """Leading ``-v``/``-vv``/``--verbose`` flags counted, and the rest (command first)."""
    rest = list(argv)
    verbose = 0
    while rest and rest[0] in ("-v", "-vv", "--verbose"):
        verbose += 2 if rest.pop(0) == "-vv" else 1
    return verbose, rest


def main(argv: Sequence[str] | None = None) -> int:
    # Find the subcommand without parsing its options, so only its module gets imported.
    verbose, args_list = _split(sys.argv[1:] if argv is None else argv)
    top = _top_parser()
    if not args_list or args_list[0] in ("-h", "--help"):
        top.print_help()
        return 0 if args_list else 2
    name, rest = args_list[0], args_list[1:]
    if name not in COMMANDS:
        top.error(f"unknown command {name!r} (choose from {', '.join(COMMANDS)})")
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s %(name)s: %(message)s"
    )
    module_name, help_text = COMMANDS[name]
    parser = argparse.ArgumentParser(prog=f"stylekit {name}", description=help_text)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        print(f"stylekit: error: '{name}' needs a component that is not installed ({exc}).", file=sys.stderr)
        return 2
    module.configure(parser)
    args = parser.parse_args(rest)
    try:
        return int(module.run(args))
    except StylekitError as exc:
        print(f"stylekit: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stylekit: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script entry point: :func:`main`, then a quick exit for :data:`FAST_EXIT` commands."""
    rc = main()
    command = _split(sys.argv[1:])[1][:1]
    if command and command[0] in FAST_EXIT:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(rc)
    sys.exit(rc)


if __name__ == "__main__":
    entry()
