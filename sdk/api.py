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
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sdk.errors import BadOptionError
from sdk.registry import StyleSpec, default_registry

if TYPE_CHECKING:
    from PIL import Image

    from sdk.engine import Engine
    from sdk.imaging import ImageInput

#: What ``style=`` accepts: a name or alias, a package path, a blend ``{name: weight}`` of
#: sub-styles of one multistyle network, or a spec.
StyleArg = str | os.PathLike[str] | Mapping[str, float] | StyleSpec
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
    ) -> Image.Image: ...


# ---------------------------------------------------------------------------------------------
# stylize


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def engine(device: str = "auto") -> Engine:
    """The process-wide engine for ``device`` (made on first use; it keeps loaded models)."""
    with _engines_lock:
        eng = _engines.get(device)
        if eng is None:
            from sdk.engine import Engine

            # Engine() checks the device (BadOptionError / DeviceError), so a bad one is never cached.
            eng = _engines[device] = Engine(device=device, registry=default_registry())
        return eng


def stylize(
    image: ImageInput,
    style: StyleArg,
    *,
    style_image: ImageInput | None = None,
    strength: float = 1.0,
    preserve_color: bool = False,
    max_side: int | None = None,
    device: str = "auto",
    backend: Backend | None = None,
) -> Image.Image:
    """Paint ``image`` in ``style`` and return a PIL image (the input's size unless ``max_side``).

    ``style``: a built-in or registered name or alias, a package file (``.pt``/``.json``), or a
    blend ``{"a": 0.7, "b": 0.3}`` of sub-styles of one network. ``style_image`` is the picture
    for the ``arbitrary`` style. ``strength`` in [0, 1] fades toward the photo;
    ``preserve_color`` keeps the photo's colours. ``device``: ``auto`` (cuda > mps > cpu),
    ``cpu``, ``cuda``, ``cuda:N``. With ``backend`` (e.g. ``StyleClient(url)``) the work is done
    there instead. Options are checked before any work; every user error raises a
    :class:`~sdk.errors.StylekitError` subclass.
    """
    from sdk import imaging

    strength = imaging.check_strength(strength)
    if max_side is not None:
        imaging.check_max_side(max_side)
    if not isinstance(preserve_color, bool):
        raise BadOptionError(f"preserve_color must be True or False, not {preserve_color!r}.")
    if backend is not None:
        if device != "auto":
            raise BadOptionError("device= applies to local stylization; a backend picks its own device.")
        return backend.stylize(
            image,
            style.name if isinstance(style, StyleSpec) else style,
            style_image=style_image,
            strength=strength,
            preserve_color=preserve_color,
            max_side=max_side,
        )
    local_style = default_registry().get(style) if isinstance(style, os.PathLike) else style
    return engine(device).stylize(
        image,
        local_style,
        style_image=style_image,
        strength=strength,
        preserve_color=preserve_color,
        max_side=max_side,
    )


# ---------------------------------------------------------------------------------------------
# Listing


@dataclass(frozen=True)
class StyleInfo:
    """What ``list_styles()`` reports about a style; ``to_dict()`` is its JSON form."""

    name: str
    kind: str
    description: str
    aliases: tuple[str, ...]
    source: str  # one line: "title, artist", an attribution, the paper, or a URL
    license: str
    origin: str  # builtin, user:PATH, plugin:NAME, registered:...
    package: str | None  # the network a multistyle sub-style belongs to (blendable together)
    index: int | None  # the sub-style's row in that network
    revision: str  # the model file's sha256, first 12 hex digits ("" when not from a package)

    @classmethod
    def from_spec(cls, spec: StyleSpec) -> StyleInfo:
        package = spec.metadata.get("package")
        return cls(
            name=spec.name,
            kind=spec.kind,
            description=spec.description,
            aliases=spec.aliases,
            source=_source_text(spec.metadata.get("source")),
            license=str(spec.metadata.get("license", "")),
            origin=spec.origin,
            package=str(package) if package is not None else None,
            index=spec.index,
            revision=str(spec.metadata.get("revision", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data


def _source_text(source: object) -> str:
    if not isinstance(source, Mapping):
        return str(source or "")
    # A painting names its title and artist; a converted network cites its paper or weights.
    title_artist = ", ".join(str(source[k]) for k in ("title", "artist") if source.get(k))
    if title_artist:
        return title_artist
    return next((str(source[k]) for k in ("attribution", "paper", "weights", "url") if source.get(k)), "")


def list_styles(pattern: str | None = None) -> list[StyleInfo]:
    """Every style on the default registry, optionally filtered by a glob (``"*wave*"``)."""
    return [StyleInfo.from_spec(spec) for spec in default_registry().list(pattern)]


def get_style(name: str) -> StyleSpec:
    """The spec for a name, alias or package path; :class:`UnknownStyleError` suggests close names."""
    return default_registry().get(name)


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
