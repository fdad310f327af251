"""The ``stylekit`` subcommands that ``sdk`` provides, one module each.

The one convention for a subcommand, in ``sdk`` and in any package that adds some (``training``
does): a module ``<package>/commands/<name>.py`` with ``configure(parser)`` and
``run(args) -> int``, listed with a one-line help and the extra it needs (``sdk.extras``; None
for none) in its package's ``commands.COMMANDS``, so ``stylekit --help`` needs no command
module imported and a missing extra is named before the command starts. Other packages publish their table as
an entry point in the group :data:`ENTRY_POINT_GROUP`; ``sdk.cli`` reads them without naming
any package but ``sdk``. A command module imports what it needs when it runs, so ``stylekit
stylize`` never pays for torchvision, onnx or training.
"""

from __future__ import annotations

ENTRY_POINT_GROUP = "stylekit.commands"

#: name -> (module, one-line help, extra it needs), in the order ``stylekit --help`` shows them.
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "stylize": ("sdk.commands.stylize", "stylize images or folders with a style", None),
    "video": ("sdk.commands.video", "stylize a video file, consistent from frame to frame", "video"),
    "styles": ("sdk.commands.styles", "list the available styles", None),
    "archive": ("sdk.commands.archive", "pack style packages as TorchServe model archives", "serve"),
    "serve": ("sdk.commands.serve", "start, check or stop a local TorchServe", "serve"),
    "web": ("sdk.commands.web", "run the web demo", "web"),
    "plugin": ("sdk.commands.plugin", "write an installable style plugin from style packages", None),
    "compile": ("sdk.commands.compile", "compile styles' kernels into this machine's cache", None),
}

__all__ = ["COMMANDS", "ENTRY_POINT_GROUP"]
