"""One description of a style for every listing: the registry, the TorchServe handler's describe
answer, the client, the web app's JSON and ``stylekit styles --json``.

A :class:`StyleInfo` is plain data (strings, a tuple, ints): what a person or a program may ask
about a style without loading it. It is made from a style package's manifest
(:meth:`StyleInfo.from_package`: one per sub-style of a multistyle network), from a registered
spec (:meth:`sdk.registry.StyleSpec.info`), or from its own JSON form (:meth:`StyleInfo.from_dict`,
what a client reads back from a server). Only the standard library and the package format are
imported here, so a server describes its package without a registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sdk.errors import ServerError
from sdk.package import StylePackage


@dataclass(frozen=True)
class StyleInfo:
    """What is known about a style without loading it; ``to_dict()`` is its JSON form."""

    name: str
    kind: str  # feedforward, multistyle, arbitrary ("unknown" for an archive stylekit did not make)
    description: str
    aliases: tuple[str, ...]
    source: str  # one line: "title, artist", an attribution, the paper, or a URL
    license: str
    origin: str  # builtin, user:PATH, plugin:NAME, registered, torchserve:MODEL, server:URL
    package: str | None  # the package (a server's model) it comes from; sub-styles of one blend
    index: int | None  # a multistyle sub-style's row in that network
    revision: str  # the model file's sha256, first 12 hex digits ("" when unknown)

    @property
    def blend_group(self) -> str | None:
        """Styles with the same group can be blended (the sub-styles of one network)."""
        return self.package if self.kind == "multistyle" else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **overrides: Any) -> StyleInfo:
        """Read the JSON form back (a server's answer): unknown keys are ignored, missing ones empty."""
        merged = {**data, **overrides}
        name = merged.get("name")
        if not isinstance(name, str) or not name:
            raise ServerError(f"A style description without a name: {str(dict(data))[:200]}")
        index = merged.get("index")
        return cls(
            name=name,
            kind=str(merged.get("kind") or "unknown"),
            description=str(merged.get("description") or ""),
            aliases=tuple(str(a) for a in merged.get("aliases") or ()),
            source=source_text(merged.get("source")),
            license=str(merged.get("license") or ""),
            origin=str(merged.get("origin") or ""),
            package=str(merged["package"]) if merged.get("package") else None,
            index=int(index) if isinstance(index, int) and not isinstance(index, bool) else None,
            revision=str(merged.get("revision") or ""),
        )

    @classmethod
    def from_package(cls, package: StylePackage, origin: str) -> list[StyleInfo]:
        """The styles a package provides: one per sub-style for multistyle, else one."""
        manifest = package.manifest
        common = {
            "kind": manifest.kind,
            "source": source_text(manifest.source),
            "license": str(manifest.source.get("license", "")),
            "origin": origin,
            "package": manifest.name,
            # Changes whenever the model file does: lets caches (web thumbnails) tell a rewrite.
            "revision": manifest.files.get(manifest.model_file, "")[:12],
        }
        if manifest.kind != "multistyle":
            name, text, aliases = manifest.name, manifest.description, manifest.aliases
            return [cls(name, description=text, aliases=aliases, index=None, **common)]
        return [
            cls(sub.name, description=sub.description, aliases=tuple(sub.aliases), index=sub.index, **common)
            for sub in sorted(manifest.styles, key=lambda s: s.index)
        ]


def source_text(source: object) -> str:
    """A manifest's ``source`` (a mapping, or already text) as one line for listings."""
    if not isinstance(source, Mapping):
        return str(source or "")
    # A painting names its title and artist; a converted network cites its paper or weights.
    title_artist = ", ".join(str(source[k]) for k in ("title", "artist") if source.get(k))
    if title_artist:
        return title_artist
    return next((str(source[k]) for k in ("attribution", "paper", "weights", "url") if source.get(k)), "")


__all__ = ["StyleInfo", "source_text"]
