"""The ``stylekit`` subcommands that ``training`` provides (the convention: ``sdk.commands``).

Published to ``stylekit`` as the entry point ``training`` in the group ``stylekit.commands``
(``setup.py``), so the command line finds them without ``sdk`` importing ``training``.
"""

from __future__ import annotations

#: name -> (module, one-line help, the extra it needs: see sdk.extras).
COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "train": ("training.commands.train", "train a new style (residual generator, perceptual loss)", "train"),
    # A checkpoint needs the train extra (checked by the command); a package needs nothing more.
    "export": (
        "training.commands.export",
        "export a checkpoint or style package (TorchScript, pt2, ONNX)",
        None,
    ),
    "eval": (
        "training.commands.eval",
        "score stylized pictures against their photos and the painting (style, colour, content)",
        None,
    ),
    "import-pretrained": (
        "training.commands.import_pretrained",
        "rebuild the built-in styles from the ONNX originals",
        None,
    ),
}

__all__ = ["COMMANDS"]
