"""The public calls: ``sdk.stylize()``, ``sdk.list_styles()``, ``sdk.get_style()``.

``stylize`` checks its options before any work, then runs locally on a cached
:class:`~sdk.engine.Engine` (one per device, so models stay loaded between calls) or hands the
request to a remote :class:`Backend` such as :class:`sdk.client.StyleClient`. torch is imported
only when the local engine is first needed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sdk.errors import BadOptionError
from sdk.info import StyleInfo
from sdk.package import ResolvedStyle
from sdk.registry import StyleSpec, default_registry
from sdk.wire import StyleRequest

if TYPE_CHECKING:
    from PIL import Image

    from sdk.engine import Engine
    from sdk.imaging import ImageInput

#: What ``style=`` accepts: a name or alias, a package path, a blend ``{name: weight}`` of
#: sub-styles of one multistyle network, a spec, or a style already resolved.
StyleArg = str | os.PathLike[str] | Mapping[str, float] | StyleSpec | StyleInfo | ResolvedStyle
#: What a backend gets: the same, with a spec replaced by its name.
RemoteStyleArg = str | os.PathLike[str] | Mapping[str, float]


@runtime_checkable
class Backend(Protocol):
    """Anything that stylizes like the local engine: :class:`sdk.client.StyleClient` for a server."""

    def stylize(
        self,
        image: ImageInput,
        style: RemoteStyleArg,
        *,
        style_image: ImageInput | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        scale: float = 1.0,
        mask: ImageInput | None = None,
        outside: RemoteStyleArg | None = None,
    ) -> Image.Image: ...


# ---------------------------------------------------------------------------------------------
# stylize


_engines: dict[tuple[str, str], Engine] = {}
_engines_lock = threading.Lock()


def engine(device: str = "auto", runner: str | None = None) -> Engine:
    """The process-wide engine for ``device`` and ``runner`` (made on first use; it keeps loaded
    models). ``runner`` None: ``STYLEKIT_RUNNER``, default ``auto`` (see :mod:`sdk.runners`)."""
    from sdk.runners import check_runner, default_runner

    chosen = default_runner() if runner is None else check_runner(runner)
    with _engines_lock:
        eng = _engines.get((device, chosen))
        if eng is None:
            from sdk.engine import Engine

            # Engine() checks the device (BadOptionError / DeviceError), so a bad one is never cached.
            eng = _engines[(device, chosen)] = Engine(device=device, runner=chosen)
        return eng


def stylize(
    image: ImageInput,
    style: StyleArg,
    *,
    style_image: ImageInput | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_side: int | None = None,
    scale: float = 1.0,
    mask: ImageInput | None = None,
    outside: StyleArg | None = None,
    device: str = "auto",
    runner: str | None = None,
    backend: Backend | None = None,
) -> Image.Image:
    """Paint ``image`` in ``style`` and return a PIL image (the input's size unless ``max_side``).

    ``style``: a built-in or registered name or alias, a package file (``.pt``/``.json``), or a
    blend ``{"a": 0.7, "b": 0.3}`` of sub-styles of one network. ``style_image`` is the picture
    for the ``arbitrary`` style. ``strength`` in [0, 1] fades toward the photo;
    ``preserve_color`` keeps the photo's colours. ``scale`` sets the stroke size: 2 paints
    strokes twice as big (the network works at half the photo's size, and the result comes
    back at full size guided by the photo's edges), 0.5 half as big; 1 (the default) runs at
    the photo's resolution. ``mask`` is an image (any mode or size; resized to the photo):
    white takes the style, black or transparent keeps the photo's pixels exactly, grey blends;
    with ``outside`` (a second style, in any form ``style`` takes) black takes that style
    instead. A mask that cannot be used raises :class:`~sdk.errors.InvalidMaskError`.
    ``device``: ``auto`` (cuda > mps > cpu), ``cpu``, ``cuda``, ``cuda:N``. ``runner``:
    ``auto``, ``compiled`` or ``torchscript``
    (:mod:`sdk.runners`; None: ``STYLEKIT_RUNNER``, default ``auto``). With ``backend`` (e.g.
    ``StyleClient(url)``) the work is done there instead. Options are checked before any work;
    every user error raises a :class:`~sdk.errors.StylekitError` subclass.
    """
    # The Python edge: options are checked once, here, by making the request.
    if outside is not None and mask is None:
        raise BadOptionError("outside= names the style where the mask is black; give a mask too.")
    request = StyleRequest(
        strength=strength,
        preserve_color=preserve_color,
        max_side=max_side,
        style_image=style_image,
        scale=scale,
        mask=mask,
    )
    if backend is not None:
        if device != "auto" or runner is not None:
            raise BadOptionError("device= and runner= apply to local stylization; a backend picks its own.")
        return backend.stylize(
            image,
            _remote_style(style),
            style_image=style_image,
            strength=request.strength,
            preserve_color=request.preserve_color,
            max_side=request.max_side,
            scale=request.scale,
            mask=mask,
            outside=None if outside is None else _remote_style(outside),
        )
    registry = default_registry()
    resolved = registry.resolve(style.name if isinstance(style, StyleInfo) else style)
    if outside is None:
        return engine(device, runner).run(image, resolved, request)
    other = registry.resolve(outside.name if isinstance(outside, StyleInfo) else outside)
    return engine(device, runner).run(image, resolved, replace(request, outside=other.label), other)


def _remote_style(style: StyleArg) -> RemoteStyleArg:
    """What a backend is sent: names (a resolved style is local: its package is on this machine)."""
    if isinstance(style, ResolvedStyle):
        raise BadOptionError("A resolved style is a package on this machine; name the style for a backend.")
    return style.name if isinstance(style, (StyleSpec, StyleInfo)) else style


# ---------------------------------------------------------------------------------------------
# Listing


def list_styles(pattern: str | None = None) -> list[StyleInfo]:
    """Every style on the default registry, optionally filtered by a glob (``"*wave*"``)."""
    return [spec.info() for spec in default_registry().list(pattern)]


def get_style(name: str) -> StyleInfo:
    """What ``list_styles()`` says of one style, by name, alias or package path;
    :class:`UnknownStyleError` suggests close names."""
    return default_registry().get(name).info()


__all__ = [
    "Backend",
    "RemoteStyleArg",
    "StyleArg",
    "StyleInfo",
    "engine",
    "get_style",
    "list_styles",
    "stylize",
]
