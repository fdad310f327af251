"""The ``stylekit`` subcommands that ``training`` provides (the convention: ``sdk.commands``).

Published to ``stylekit`` as the entry point ``training`` in the group ``stylekit.commands``
(``setup.py``), so the command line finds them without ``sdk`` importing ``training``.
"""

from __future__ import annotations

#: name -> (module, one-line help).
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("training.commands.train", "train a new style (residual generator, perceptual loss)"),
    "export": ("training.commands.export", "export a training checkpoint as a style package"),
    "import-pretrained": (
        "training.commands.import_pretrained",
        "rebuild the built-in styles from the ONNX originals",
    ),
}

__all__ = ["COMMANDS"]
