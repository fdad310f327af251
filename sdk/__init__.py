"""stylekit SDK: ``sdk.stylize("photo.jpg", style="...")`` and friends.

Heavy modules (torch, the registry, the client) are imported on first use, so that
``import sdk`` stays cheap for the CLI and for remote-only users of :class:`StyleClient`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sdk.errors import (
    AuthenticationError,
    BadOptionError,
    DeviceError,
    DuplicateStyleError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidMaskError,
    InvalidVideoError,
    PluginError,
    ServerError,
    ServerUnavailableError,
    StylekitError,
    StylePackageError,
    TrainingError,
    UnknownStyleError,
    WeightsNotFoundError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "stylize": "sdk.api",
    "list_styles": "sdk.api",
    "get_style": "sdk.api",
    "register_style": "sdk.registry",
    "default_registry": "sdk.registry",
    "StyleRegistry": "sdk.registry",
    "StyleSpec": "sdk.registry",
    "Engine": "sdk.engine",
    "StyleClient": "sdk.client",
    "ImageLimits": "sdk.imaging",
    "keep_freed_memory": "sdk.allocator",
    "stylize_video": "sdk.video",
    "stylize_frames": "sdk.video",
    "FrameStylizer": "sdk.video",
}

if TYPE_CHECKING:
    from sdk.allocator import keep_freed_memory
    from sdk.api import get_style, list_styles, stylize
    from sdk.client import StyleClient
    from sdk.engine import Engine
    from sdk.imaging import ImageLimits
    from sdk.registry import StyleRegistry, StyleSpec, default_registry, register_style
    from sdk.video import FrameStylizer, stylize_frames, stylize_video


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sdk' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AuthenticationError",
    "BadOptionError",
    "DeviceError",
    "DuplicateStyleError",
    "Engine",
    "FrameStylizer",
    "ImageLimits",
    "ImageTooLargeError",
    "InvalidImageError",
    "InvalidMaskError",
    "InvalidVideoError",
    "PluginError",
    "ServerError",
    "ServerUnavailableError",
    "StyleClient",
    "StylePackageError",
    "StyleRegistry",
    "StyleSpec",
    "StylekitError",
    "TrainingError",
    "UnknownStyleError",
    "WeightsNotFoundError",
    "default_registry",
    "get_style",
    "keep_freed_memory",
    "list_styles",
    "register_style",
    "stylize",
    "stylize_frames",
    "stylize_video",
]
