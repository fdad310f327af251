"""The ``STYLEKIT_*`` environment variables: every one named and read here, by one rule.

A variable that is unset, empty or only spaces counts as unset; paths expand ``~``. Each value
is read when it is asked for (not at import), so a long-lived process and the tests see
changes. Nothing here imports more than the standard library.

- ``STYLEKIT_HOME``: the user's folder (default ``~/.stylekit``) with ``styles/`` and ``serve/``
  (the registry, ``stylekit serve``, the client);
- ``STYLEKIT_SERVER``, ``STYLEKIT_TOKEN``, ``STYLEKIT_MANAGEMENT_TOKEN``: the TorchServe URL and
  keys a :class:`~sdk.client.StyleClient` uses when given none;
- ``STYLEKIT_MAX_BYTES``, ``STYLEKIT_MAX_PIXELS``, ``STYLEKIT_MAX_SIDE``: image limits
  (:meth:`sdk.imaging.ImageLimits.from_env`);
- ``STYLEKIT_MALLOC``: ``system`` leaves the C allocator alone (:mod:`sdk.allocator`);
- ``STYLEKIT_VGG_WEIGHTS``: a local VGG state dict for training offline (``training.loss_networks``);
- ``STYLEKIT_RUNNER``: ``auto``, ``compiled`` or ``torchscript``, the engine's default runner
  (:mod:`sdk.runners`; compiled kernels are cached in ``<home>/cache/compiled``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

HOME = "STYLEKIT_HOME"
SERVER = "STYLEKIT_SERVER"
TOKEN = "STYLEKIT_TOKEN"
MANAGEMENT_TOKEN = "STYLEKIT_MANAGEMENT_TOKEN"
MAX_BYTES = "STYLEKIT_MAX_BYTES"
MAX_PIXELS = "STYLEKIT_MAX_PIXELS"
MAX_SIDE = "STYLEKIT_MAX_SIDE"
MALLOC = "STYLEKIT_MALLOC"
VGG_WEIGHTS = "STYLEKIT_VGG_WEIGHTS"
RUNNER = "STYLEKIT_RUNNER"


def get(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable's value, stripped; None when unset or blank."""
    value = (os.environ if environ is None else environ).get(name)
    return value.strip() if value is not None and value.strip() else None


def path(name: str) -> Path | None:
    """A path variable with ``~`` expanded; None when unset."""
    value = get(name)
    return Path(value).expanduser() if value is not None else None


def home() -> Path:
    """The user's stylekit folder: ``$STYLEKIT_HOME``, default ``~/.stylekit``."""
    return path(HOME) or Path.home() / ".stylekit"


def user_styles_dir() -> Path:
    """Where training installs styles and the registry finds them: ``<home>/styles``."""
    return home() / "styles"


def serve_dir() -> Path:
    """Where ``stylekit serve`` keeps a local server's config, state, keys and logs: ``<home>/serve``."""
    return home() / "serve"


__all__ = [
    "HOME",
    "MALLOC",
    "MANAGEMENT_TOKEN",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "RUNNER",
    "SERVER",
    "TOKEN",
    "VGG_WEIGHTS",
    "get",
    "home",
    "path",
    "serve_dir",
    "user_styles_dir",
]
