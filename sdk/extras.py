"""The optional parts of stylekit (``pip install 'stylekit[NAME]'``) and the check for them.

``setup.py`` lists each extra's distributions; this module says what each brings and which
top-level modules show it is installed, so a command that needs one can say so in one line
(``stylekit: error: 'serve' needs TorchServe: pip install 'stylekit[serve]'``) before it starts
anything. Modules are looked for (``importlib.util.find_spec``), not imported: the check is
quick and has no side effects.
"""

from __future__ import annotations

import importlib.util

from sdk.errors import StylekitError

#: extra -> (what it brings, in words; the top-level modules it installs).
EXTRAS: dict[str, tuple[str, tuple[str, ...]]] = {
    "serve": ("TorchServe", ("ts", "model_archiver", "yaml", "psutil")),
    "web": ("the web demo's server (FastAPI, uvicorn)", ("fastapi", "uvicorn", "multipart", "websockets")),
    "train": ("training (torchvision, TensorBoard)", ("torchvision", "tensorboard")),
    "video": ("video support (PyAV, OpenCV)", ("av", "cv2")),
    "export": ("the ONNX exporter (onnx, onnxscript, onnxruntime)", ("onnx", "onnxscript", "onnxruntime")),
}


class MissingExtraError(StylekitError):
    """A command needs an optional part of stylekit that is not installed."""

    code = "missing_extra"


def missing_modules(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be found in this environment."""
    return [name for name in EXTRAS[extra][1] if not _findable(name)]


def require(extra: str, what_needs_it: str) -> None:
    """Raise :class:`MissingExtraError` (one sentence naming the extra) unless ``extra`` is installed."""
    if missing_modules(extra):
        raise MissingExtraError(message(extra, what_needs_it))


def message(extra: str, what_needs_it: str) -> str:
    return f"'{what_needs_it}' needs {EXTRAS[extra][0]}: pip install 'stylekit[{extra}]'"


def extra_providing(module: str | None) -> str | None:
    """The extra that installs the top-level module ``module`` (None if no extra does)."""
    top = (module or "").split(".")[0]
    return next((extra for extra, (_, modules) in EXTRAS.items() if top in modules), None)


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses it, or a module set to None
        return False


__all__ = ["EXTRAS", "MissingExtraError", "extra_providing", "message", "missing_modules", "require"]
