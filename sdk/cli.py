"""The ``stylekit`` command.

Each subcommand lives in its own module (the convention: :mod:`sdk.commands`), imported only
when that subcommand runs: the stylize path must not pay for torchvision, onnx or ``training``
(see README, "Speed"). ``sdk``'s commands are listed in ``sdk.commands.COMMANDS``; other
packages add theirs through the entry-point group ``stylekit.commands``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from sdk import extras
from sdk.errors import StylekitError


def commands() -> dict[str, tuple[str, str, str | None]]:
    """name -> (module, one-line help, extra it needs): sdk's own, then those other packages publish."""
    from importlib.metadata import entry_points

    from sdk.commands import COMMANDS, ENTRY_POINT_GROUP

    found = dict(COMMANDS)
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            table = ep.load()
        except Exception as exc:  # a broken provider must not take the whole command line down
            logging.getLogger(__name__).warning("commands of %s could not be loaded: %s", ep.value, exc)
            continue
        for name, entry in dict(table).items():
            extra = entry[2] if len(entry) > 2 and entry[2] else None
            found.setdefault(str(name), (str(entry[0]), str(entry[1]), extra))
    return found


# Commands whose process may skip Python's teardown once their output is flushed: unloading
# torch's extension modules costs ~0.45 s of a ~2.5 s ``stylekit stylize`` (measured, README).
# Only commands that register no atexit work of their own belong here.
FAST_EXIT = frozenset({"stylize", "styles"})


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in the CLI's one-line form: ``stylekit: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:
        # "argument --strength: --strength must be ..." says the option's name once.
        message = re.sub(r"^argument (\S+): (?=\1 )", "", message)
        self.exit(2, f"stylekit: error: {message} (see '{self.prog} --help')\n")


def _top_parser(table: dict[str, tuple[str, str, str | None]]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stylekit",
        description="Fast neural style transfer.",
        epilog="Run 'stylekit COMMAND --help' for a command's options.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text, _) in table.items():
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
    from sdk.commands import COMMANDS

    name, rest = (args_list[0], args_list[1:]) if args_list else ("", [])
    # sdk's own commands need no look at other packages (the fast path of `stylekit stylize`).
    table = COMMANDS if name in COMMANDS else commands()
    if name == "--version":
        import platform

        from sdk import __version__

        print(f"stylekit {__version__} (Python {platform.python_version()})")
        return 0
    if not args_list or name in ("-h", "--help"):
        _top_parser(table).print_help()
        return 0 if args_list else 2
    if name not in table:
        _top_parser(table).error(f"unknown command {name!r} (choose from {', '.join(table)})")
    logging.basicConfig(
        level=logging.WARNING - 10 * min(verbose, 2), format="%(levelname)s %(name)s: %(message)s"
    )
    module_name, help_text, extra = table[name]
    parser = _Parser(prog=f"stylekit {name}", description=help_text)
    try:
        if extra is not None:
            extras.require(extra, name)  # before anything starts: no half-done work, no state behind
        module = importlib.import_module(module_name)
    except extras.MissingExtraError as exc:
        print(f"stylekit: error: {exc.message}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(f"stylekit: error: {_missing(name, exc)}", file=sys.stderr)
        return 2
    module.configure(parser)
    try:
        args = parser.parse_args(rest)
    except SystemExit as exc:  # argparse has printed the help (0) or the usage error (2)
        return int(exc.code or 0)
    try:
        return int(module.run(args))
    except StylekitError as exc:
        print(f"stylekit: error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stylekit: interrupted", file=sys.stderr)
        return 130
    except ImportError as exc:  # a part the command loads only when it runs
        print(f"stylekit: error: {_missing(name, exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        # A bug or a failure nobody foresaw: still one line for the user; -vv logs the traceback.
        logging.getLogger("sdk.cli").debug("%s failed", name, exc_info=True)
        print(f"stylekit: error: unexpected {type(exc).__name__}: {_first_line(exc)} "
              f"(run 'stylekit -vv {name} ...' for the traceback)", file=sys.stderr)  # fmt: skip
        return 2


def _missing(command: str, exc: ImportError) -> str:
    """One sentence for a module that is not installed, naming the extra that brings it."""
    provider = extras.extra_providing(exc.name)
    if provider is not None:
        return extras.message(provider, command)
    return f"'{command}' needs {exc.name or exc}, which is not installed"


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of an exception's message (TorchScript errors run to 50 lines)."""
    line = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "no message")
    return line if len(line) <= limit else line[: limit - 3] + "..."


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
