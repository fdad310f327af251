"""The style registry: every style a user can name, wherever it comes from.

A :class:`StyleSpec` says what a style is (name, kind, aliases, source, license) and how to
get its package (``loader``, called only when the style is used). A :class:`StyleRegistry`
finds specs in three places, in this order of precedence (the first one to claim a name
keeps it; later claims are reported and skipped, never fatal):

1. built-in packages shipped in ``sdk/styles/`` (one spec per multistyle sub-style);
2. the user's style folder ``$STYLEKIT_HOME/styles/`` (default ``~/.stylekit/styles``),
   where training installs new styles. It is kept in step with the folder: listing, and
   looking up a name that is unknown or came from the folder, pick up packages added,
   removed or rewritten since (one ``stat`` of the folder when nothing changed);
3. plugins: entry points in the group ``stylekit.styles``. Each resolves to a callable that
   returns a :class:`StyleSpec`, a :class:`~sdk.package.StylePackage`, a package path, or an
   iterable of those. A plugin that fails is reported by name; the others still load.

Discovery is lazy and staged: looking up a built-in name never imports a plugin, which keeps
``stylekit stylize`` quick. Listing runs every stage. Problems met during discovery are
logged and kept in :attr:`StyleRegistry.errors`.

A style can also be given as a path to a package file (``.pt``/``.json``): it resolves
without being registered.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar, overload

from sdk.errors import (
    BadOptionError,
    DuplicateStyleError,
    PluginError,
    StylekitError,
    StylePackageError,
    UnknownStyleError,
)
from sdk.info import StyleInfo, source_text
from sdk.package import KINDS, Kind, ResolvedStyle, StylePackage, read_package
from sdk.settings import user_styles_dir
from sdk.wire import MAX_NAME_CHARS, shown, unknown_style_message

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "stylekit.styles"
PACKAGE_SUFFIXES = (".pt", ".json")
# Lowercase words joined by dashes or underscores: safe in file names, URLs, TorchServe model
# names and the CLI's blend syntax ("a=0.7,b=0.3").
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")


def check_style_name(name: object) -> str:
    """The one rule for a style's name, wherever a style is made (registered, trained, exported)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > MAX_NAME_CHARS:
        raise BadOptionError(
            f"Invalid style name {shown(name)}: use lowercase letters, digits, '-' and '_' "
            f"(at most {MAX_NAME_CHARS} characters, starting with a letter or digit)."
        )
    return name

PackageLike = StylePackage | str | os.PathLike[str]
F = TypeVar("F", bound=Callable[[], PackageLike])


def _empty_metadata() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class StyleSpec:
    """One style a user can name.

    ``loader`` returns the style's package and is called only when the style is used (the
    engine loads and caches the module). ``metadata`` carries what a caller may ask about:
    ``source`` (dict: title, artist, url, attribution), ``license``, ``origin`` (where the
    spec came from), and for a multistyle sub-style ``package`` (the network's name) and
    ``index`` (its row in ``style_weights``).
    """

    name: str
    kind: Kind
    loader: Callable[[], StylePackage]
    description: str = ""
    aliases: tuple[str, ...] = ()
    # Excluded from hashing: a mapping is not hashable, and name + kind + loader identify a spec.
    metadata: Mapping[str, Any] = field(default_factory=_empty_metadata, hash=False)

    def __post_init__(self) -> None:
        check_style_name(self.name)
        if self.kind not in KINDS:
            raise BadOptionError(
                f"Style {self.name!r} has unknown kind {self.kind!r}; expected one of {KINDS}."
            )
        if not callable(self.loader):
            raise BadOptionError(f"Style {self.name!r}: loader must be a callable returning a StylePackage.")
        aliases = tuple(self.aliases)
        for alias in aliases:
            if not isinstance(alias, str) or not alias.strip() or alias != alias.strip():
                raise BadOptionError(f"Style {self.name!r} has an invalid alias {alias!r}.")
        # Normalise in place (frozen): a tuple and a read-only mapping, whatever was passed.
        object.__setattr__(self, "aliases", aliases)
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    @property
    def origin(self) -> str:
        """Where this spec came from: ``builtin``, ``user:PATH``, ``plugin:NAME``, ``path:PATH``, ..."""
        return str(self.metadata.get("origin", "registered"))

    @property
    def index(self) -> int | None:
        """Row in the network's ``style_weights`` for a multistyle sub-style, else None."""
        value = self.metadata.get("index")
        return int(value) if value is not None else None

    def info(self) -> StyleInfo:
        """What ``sdk.list_styles()`` reports about this style (no package is loaded)."""
        package = self.metadata.get("package")
        return StyleInfo(
            name=self.name,
            kind=self.kind,
            description=self.description,
            aliases=self.aliases,
            source=source_text(self.metadata.get("source")),
            license=str(self.metadata.get("license", "")),
            origin=self.origin,
            package=str(package) if package is not None else None,
            index=self.index,
            revision=str(self.metadata.get("revision", "")),
        )

    def package(self) -> StylePackage:
        """Call the loader; a package of another kind than the spec says is an error."""
        try:
            pkg = self.loader()
        except StylekitError:
            raise
        except Exception as exc:
            raise StylePackageError(
                f"Style {self.name!r} ({self.origin}): loading its package failed: {exc}"
            ) from exc
        if not isinstance(pkg, StylePackage):
            raise StylePackageError(
                f"Style {self.name!r} ({self.origin}): loader returned {type(pkg).__name__}, "
                "not a StylePackage."
            )
        if pkg.manifest.kind != self.kind:
            raise StylePackageError(
                f"Style {self.name!r} ({self.origin}) is registered as {self.kind} "
                f"but its package {pkg.root / pkg.manifest.model_file} is {pkg.manifest.kind}."
            )
        return pkg


# ---------------------------------------------------------------------------------------------
# Packages -> specs


def _checked_package(path: str | os.PathLike[str]) -> StylePackage:
    """Read a package's manifest and make sure its model file is there (a stat, no hashing)."""
    pkg = read_package(path)
    if not pkg.model_path.is_file():
        raise StylePackageError(f"Style {pkg.manifest.name!r}: model file {pkg.model_path} is missing.")
    return pkg


def _source_metadata(pkg: StylePackage, origin: str) -> dict[str, Any]:
    source = dict(pkg.manifest.source)
    return {
        "source": source,
        "license": str(source.get("license", "")),
        "origin": origin,
        "package": pkg.manifest.name,
        "path": str(pkg.root / pkg.manifest.model_file),
        "version": pkg.manifest.version,
        # Changes whenever the model file does: lets caches (web thumbnails) tell a rewrite.
        "revision": pkg.manifest.files.get(pkg.manifest.model_file, "")[:12],
    }


def specs_from_package(pkg: StylePackage, origin: str) -> list[StyleSpec]:
    """The specs a package provides: one per sub-style for multistyle, else one."""
    meta = _source_metadata(pkg, origin)

    def loader() -> StylePackage:
        return pkg

    if pkg.manifest.kind != "multistyle":
        man = pkg.manifest
        return [StyleSpec(man.name, man.kind, loader, man.description, man.aliases, meta)]
    return [
        StyleSpec(sub.name, "multistyle", loader, sub.description, sub.aliases, {**meta, "index": sub.index})
        for sub in sorted(pkg.manifest.styles, key=lambda s: s.index)
    ]


def as_registered(pkg: StylePackage, specs: Iterable[StyleSpec]) -> StylePackage:
    """``pkg`` with the identity its registered ``specs`` give its styles: name, description,
    aliases, source and license. A plugin's :class:`StyleSpec` may name a package's style anew;
    what serves the package (``stylekit archive``) must answer to the names listed locally.

    A single-style package takes its one spec's identity whole (what ``spec.info()`` lists); a
    multistyle network keeps its own name and source, and each sub-style takes its spec's
    (matched by ``index``).
    """
    specs = list(specs)
    man = pkg.manifest
    if man.kind != "multistyle":
        if len(specs) != 1:
            raise StylePackageError(f"Style package {man.name!r} is {man.kind}: one style, not {len(specs)}.")
        spec = specs[0]
        # Exactly what spec.info() lists: its source and license, not the manifest's.
        source = dict(spec.metadata.get("source") or {})
        source.pop("license", None)
        if spec.metadata.get("license"):
            source["license"] = str(spec.metadata["license"])
        named = replace(man, name=spec.name, description=spec.description, aliases=spec.aliases)
        named.source = source
        return StylePackage(named, pkg.root)
    by_index = {spec.index: spec for spec in specs}
    styles = tuple(
        replace(sub, name=sub_spec.name, description=sub_spec.description, aliases=sub_spec.aliases)
        if (sub_spec := by_index.get(sub.index)) is not None
        else sub
        for sub in man.styles
    )
    return StylePackage(replace(man, styles=styles), pkg.root)


def looks_like_path(style: object) -> bool:
    """True for a path-like object or a string that can only be a file (names have no dots or slashes)."""
    if isinstance(style, os.PathLike):
        return True
    return isinstance(style, str) and (
        style.lower().endswith(PACKAGE_SUFFIXES) or "/" in style or os.sep in style
    )


def spec_from_path(path: str | os.PathLike[str]) -> StyleSpec:
    """A spec for a package file given directly as the style (not registered anywhere)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise StylePackageError(f"Style file {p} does not exist.")
    pkg = _checked_package(p)
    specs = specs_from_package(pkg, f"path:{pkg.root / pkg.manifest.model_file}")
    if len(specs) == 1:
        return specs[0]
    names = ", ".join(s.name for s in specs)
    raise BadOptionError(
        f"{p} is a multistyle network with {len(specs)} styles ({names}); register it "
        f"(sdk.register_style or the user style folder) and pick one by name."
    )


# A folder's mtime is trusted to show every change only once it is older than this: some
# filesystems store whole seconds (FAT: steps of two), so two changes can share one value.
_MTIME_TRUST_NS = 3_000_000_000


def _signature(path: Path) -> tuple[int, int] | None:
    """(mtime, size) of a file, None if it is gone: how a rewritten manifest is noticed."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def _builtin_dir() -> Path:
    from sdk.styles import BUILTIN_DIR

    return BUILTIN_DIR


# ---------------------------------------------------------------------------------------------
# The registry


class StyleRegistry:
    """Styles by name or alias (case-insensitive), with lazy, thread-safe discovery.

    ``StyleRegistry()`` is empty: fill it with :meth:`register`. With ``discover=True`` it finds
    built-ins, the user folder and plugins on first use (see the module docstring); the
    folders and the entry-point group can be changed for tests and embedding.
    """

    def __init__(
        self,
        *,
        discover: bool = False,
        builtin_dir: str | os.PathLike[str] | None = None,
        user_dir: str | os.PathLike[str] | None = None,
        entry_point_group: str = ENTRY_POINT_GROUP,
    ) -> None:
        self._specs: dict[str, StyleSpec] = {}  # name -> spec, in registration order
        self._index: dict[str, str] = {}  # lowercased name or alias -> name
        self._errors: list[StylekitError] = []
        self._lock = threading.RLock()
        self._builtin_dir = Path(builtin_dir) if builtin_dir is not None else None
        self._user_dir = Path(user_dir) if user_dir is not None else None
        self._group = entry_point_group
        # Stages still to run, in order of precedence. A stage is removed before it runs, so a
        # plugin that calls register_style() while being loaded does not re-enter it.
        self._pending: list[Callable[[], None]] = (
            [self._discover_builtins, self._discover_user_folder, self._discover_plugins] if discover else []
        )
        self._user_scanned = False
        # The user folder as last scanned: each package's manifest -> its (mtime, size), model
        # file and the names it added; manifests that failed to read -> their (mtime, size);
        # the folder and its mtime, None when the next look must rescan anyway.
        self._user_packages: dict[Path, tuple[tuple[int, int], Path, list[str]]] = {}
        self._user_skipped: dict[Path, tuple[int, int]] = {}
        # Problems of the user folder's packages as last read, per manifest: replaced on each
        # read, dropped with the file, so `errors` never reports a package fixed or removed.
        self._user_errors: dict[Path, list[StylekitError]] = {}
        self._collecting: list[StylekitError] | None = None
        self._user_mark: tuple[Path, int] | None = None

    # -- discovery -------------------------------------------------------------------------

    def discover(self) -> None:
        """Run every pending discovery stage now (otherwise they run on first use)."""
        with self._lock:
            while self._pending:
                self._pending.pop(0)()

    def _discover_until(self, key: str) -> None:
        """Run stages in order until ``key`` (lowercase) is known or none is left."""
        with self._lock:
            while key not in self._index and self._pending:
                self._pending.pop(0)()

    @property
    def errors(self) -> tuple[StylekitError, ...]:
        """Problems met during discovery (broken plugins, duplicate names, bad packages)."""
        with self._lock:
            return (*self._errors, *(e for errors in self._user_errors.values() for e in errors))

    def _report(self, error: StylekitError) -> None:
        if self._collecting is not None:
            self._collecting.append(error)
            return
        if any(e.message == error.message for e in self._errors):
            return  # a rescan meeting the same broken file again
        log.warning("%s", error.message)
        self._errors.append(error)

    def _add_discovered(self, specs: Iterable[StyleSpec]) -> list[str]:
        """Add specs, reporting clashes; the names actually added."""
        added: list[str] = []
        for spec in specs:
            try:
                self._add(spec, strict=False)
            except DuplicateStyleError as exc:
                self._report(exc)
            else:
                added.append(spec.name)
        return added

    def _add_package(self, manifest: Path, origin: str) -> tuple[Path, list[str]] | None:
        """Add the styles of one package: its model file and the names added, or None
        (reported) when it cannot be read."""
        try:
            pkg = _checked_package(manifest)
            specs = specs_from_package(pkg, origin)
        except StylekitError as exc:
            self._report(StylePackageError(f"Skipped style package {manifest}: {exc.message}"))
            return None
        return pkg.model_path, self._add_discovered(specs)

    def _discover_builtins(self) -> None:
        folder = self._builtin_dir or _builtin_dir()
        if folder.is_dir():
            for manifest in sorted(folder.glob("*.json")):
                self._add_package(manifest, "builtin")

    def _discover_user_folder(self) -> None:
        self._user_scanned = True
        self._sync_user_folder()

    def _sync_user_folder(self) -> None:
        """Bring the user folder's styles in step with the folder: add new packages, drop the
        specs of removed ones, re-read rewritten ones.

        Adding, removing or renaming a file (what an atomic write does) changes the folder's
        mtime, so when that is unchanged and no manifest that failed to read has changed
        since, nothing is read. Right after a change the mtime is not trusted (a filesystem
        with coarse timestamps could show the same value after a second change), so the
        folder is rescanned until it has been quiet for a few seconds.
        """
        folder = self._user_dir or user_styles_dir()
        try:
            mtime = folder.stat().st_mtime_ns
        except OSError:
            mtime = -1  # no folder (yet)
        unchanged = self._user_mark == (folder, mtime)
        if unchanged and all(_signature(p) == sig for p, sig in self._user_skipped.items()):
            return
        present = {p: sig for p in sorted(folder.glob("*.json")) if (sig := _signature(p)) is not None}
        for manifest, (sig, model, names) in list(self._user_packages.items()):
            if present.get(manifest) != sig or not model.is_file():
                del self._user_packages[manifest]
                self._user_errors.pop(manifest, None)
                self._remove_names(names)
                log.info("style package %s was removed or rewritten; dropped %s", manifest, ", ".join(names))
        self._user_skipped = {}
        for manifest, sig in present.items():
            if manifest in self._user_packages:
                continue
            # Broken packages are retried on every rescan (a package copied in model file last
            # is picked up once complete).
            added = self._add_user_package(manifest)
            if added is None:
                self._user_skipped[manifest] = sig
            else:
                self._user_packages[manifest] = (sig, *added)
        for gone in self._user_errors.keys() - present.keys():
            del self._user_errors[gone]
        quiet = time.time_ns() - mtime > _MTIME_TRUST_NS
        self._user_mark = (folder, mtime) if mtime >= 0 and quiet else None

    def _add_user_package(self, manifest: Path) -> tuple[Path, list[str]] | None:
        """:meth:`_add_package` for the user folder: the problems found replace the manifest's
        earlier ones, and each is logged once however often the package is retried."""
        logged = {e.message for e in self._user_errors.pop(manifest, [])}
        self._collecting = []
        try:
            added = self._add_package(manifest, f"user:{manifest}")
        finally:
            errors, self._collecting = self._collecting, None
        for error in errors:
            if error.message not in logged:
                log.warning("%s", error.message)
        if errors:
            self._user_errors[manifest] = errors
        return added

    def _remove_names(self, names: Iterable[str]) -> None:
        for name in names:
            self._specs.pop(name, None)
        gone = set(names)
        for key in [k for k, v in self._index.items() if v in gone]:
            del self._index[key]

    def _discover_plugins(self) -> None:
        from importlib.metadata import entry_points

        for ep in entry_points(group=self._group):
            dist = getattr(ep, "dist", None)
            where = f"{ep.value}" + (f" in {dist.name} {dist.version}" if dist is not None else "")
            origin = f"plugin:{ep.name}"
            try:
                target = ep.load()
                produced = target() if callable(target) and not isinstance(target, StyleSpec) else target
                specs = list(self._specs_from_plugin_result(produced, origin))
            except Exception as exc:
                # One broken plugin must never stop the others: report it by name and go on.
                log.debug("plugin %s failed", ep.name, exc_info=True)
                detail = exc.message if isinstance(exc, StylekitError) else f"{type(exc).__name__}: {exc}"
                self._report(PluginError(f"Style plugin {ep.name!r} ({where}) failed to load: {detail}"))
                continue
            self._add_discovered(specs)

    def _specs_from_plugin_result(self, produced: object, origin: str) -> Iterator[StyleSpec]:
        if produced is None:
            return
        if isinstance(produced, StyleSpec):
            # The origin always names the entry point, so a clash or failure points at it.
            yield replace(produced, metadata={**produced.metadata, "origin": origin})
        elif isinstance(produced, StylePackage):
            yield from specs_from_package(produced, origin)
        elif isinstance(produced, str | os.PathLike):
            yield from specs_from_package(_checked_package(produced), origin)
        elif isinstance(produced, Iterable):
            for item in produced:
                yield from self._specs_from_plugin_result(item, origin)
        else:
            raise PluginError(
                f"returned {type(produced).__name__}; expected a StyleSpec, StylePackage, "
                "package path, or a list of them"
            )

    # -- registration ----------------------------------------------------------------------

    def register(self, spec: StyleSpec) -> StyleSpec:
        """Add ``spec``; a name or alias that is already taken raises :class:`DuplicateStyleError`.

        On a discovering registry, discovery runs first so that a clash with a built-in or a
        plugin is caught here and not later.
        """
        return self.register_all([spec])[0]

    def register_all(self, specs: Iterable[StyleSpec]) -> tuple[StyleSpec, ...]:
        """Register several specs, all or none: on a clash the registry is left unchanged."""
        specs = tuple(specs)
        for spec in specs:
            if not isinstance(spec, StyleSpec):
                raise BadOptionError(f"register() takes a StyleSpec, not {type(spec).__name__}.")
        with self._lock:
            self.discover()
            taken: set[str] = set()
            for spec in specs:
                keys = {spec.name, *(a.lower() for a in spec.aliases)}
                for key in keys:
                    if key in self._index:
                        raise self._clash(spec, key, strict=True)
                    if key in taken:
                        raise DuplicateStyleError(f"Style name or alias {key!r} is given twice.")
                taken |= keys
            for spec in specs:
                self._add(spec, strict=True)
        return specs

    def _clash(self, spec: StyleSpec, key: str, *, strict: bool) -> DuplicateStyleError:
        """The error for ``key`` (the spec's name or one alias) being taken already."""
        other = self._specs[self._index[key.lower()]]
        if key.lower() == spec.name:
            what = "name" if other.name == spec.name else f"alias of {other.name!r}"
            message = f"Style {spec.name!r} from {spec.origin} clashes with the {what} from {other.origin}"
            tail = " (skipped)."
        else:
            message = (
                f"Alias {key!r} of style {spec.name!r} ({spec.origin}) is already taken by "
                f"{other.name!r} ({other.origin})"
            )
            tail = " (alias dropped)."
        return DuplicateStyleError(message + ("." if strict else tail))

    def _add(self, spec: StyleSpec, *, strict: bool) -> None:
        """Add a spec; a taken name raises, a taken alias raises (strict) or is dropped and reported."""
        if spec.name in self._index:
            raise self._clash(spec, spec.name, strict=strict)
        aliases: list[str] = []
        for alias in spec.aliases:
            akey = alias.lower()
            if akey == spec.name or akey in (a.lower() for a in aliases):
                continue
            if akey in self._index:
                if strict:
                    raise self._clash(spec, alias, strict=True)
                self._report(self._clash(spec, alias, strict=False))
                continue
            aliases.append(alias)
        if tuple(aliases) != spec.aliases:
            spec = replace(spec, aliases=tuple(aliases))
        self._specs[spec.name] = spec
        self._index[spec.name] = spec.name
        for alias in aliases:
            self._index[alias.lower()] = spec.name

    # -- lookup ----------------------------------------------------------------------------

    def get(self, style: str | os.PathLike[str] | StyleSpec) -> StyleSpec:
        """A spec by name or alias (case-insensitive), or for a package path (``.pt``/``.json``).

        Paths are for trusted callers (Python code, the CLI); what a request names goes through
        :meth:`lookup`. An unknown name raises :class:`UnknownStyleError` that suggests close
        matches.
        """
        if isinstance(style, StyleSpec):
            return style
        if looks_like_path(style):
            return spec_from_path(style)
        if not isinstance(style, str):
            raise BadOptionError(f"A style is a name or a package path, not {type(style).__name__}.")
        return self.lookup(style)

    def resolve(self, style: str | os.PathLike[str] | StyleSpec | Mapping[str, float] | ResolvedStyle
                ) -> ResolvedStyle:  # fmt: skip
        """A style choice -> the package to run and its weight row (what :class:`~sdk.engine.Engine` runs).

        ``style``: what :meth:`get` takes, or a blend ``{name: weight}`` of sub-styles of one
        multistyle network (weights finite, >= 0, normalised). An unknown name raises
        :class:`UnknownStyleError`; a blend across networks or kinds :class:`BadOptionError`.
        """
        if isinstance(style, ResolvedStyle):
            return style
        if not isinstance(style, Mapping):
            spec = self.get(style)
            return _resolved(spec, [(spec, 1.0)])
        if not style:
            raise BadOptionError("A style blend needs at least one style name and weight.")
        parts = [(self.get(name), weight) for name, weight in style.items()]
        if len(parts) == 1:
            return _resolved(parts[0][0], parts)
        for spec, _ in parts:
            if spec.kind != "multistyle":
                raise BadOptionError(
                    f"Only sub-styles of one multistyle network can be blended; {spec.name!r} is {spec.kind}."
                )
        packages = [spec.package() for spec, _ in parts]
        if len({(str(p.root.resolve()), p.manifest.model_file) for p in packages}) > 1:
            pairs = zip(parts, packages, strict=True)
            names = ", ".join(f"{spec.name!r} ({pkg.manifest.name})" for (spec, _), pkg in pairs)
            raise BadOptionError(f"Blended styles must come from one multistyle network; got {names}.")
        return ResolvedStyle.of(packages[0], [(spec.index, spec.name, w) for spec, w in parts])

    def lookup(self, name: str) -> StyleSpec:
        """A spec by registered name or alias (case-insensitive) only: never a file.

        What a request names over the network goes through here, so an answer is the same
        whether or not a file of that name exists on the server.
        """
        key = name.strip().lower()
        with self._lock:
            self._discover_until(key)
            known = self._index.get(key)
            if self._user_scanned and (known is None or self._specs[known].origin.startswith("user:")):
                # Training may have installed the style since discovery ran (long-lived
                # processes), or its package may have been removed.
                self._sync_user_folder()
            found = self._index.get(key)
            if found is not None:
                return self._specs[found]
            raise UnknownStyleError(self._unknown_message(name))

    def package_named(self, name: str) -> StylePackage:
        """A registered package by a style's name or alias, or by the package's own name (a
        multistyle network's, e.g. ``multistyle26``): what ``stylekit export`` and ``stylekit
        compile`` take. Never a file."""
        try:
            return self.lookup(name).package()
        except UnknownStyleError:
            key = name.strip().lower()
            for spec in self.list():
                if str(spec.metadata.get("package", "")).lower() == key:
                    return spec.package()
            raise

    def _unknown_message(self, style: str) -> str:
        return unknown_style_message(style, self._index)

    def list(self, pattern: str | None = None) -> list[StyleSpec]:
        """All specs (after full discovery, the user folder as it is now), optionally filtered
        by a glob on name or alias."""
        with self._lock:
            self.discover()
            if self._user_scanned:
                self._sync_user_folder()
            specs = list(self._specs.values())
        if not pattern:
            return specs
        pat = pattern.lower()
        return [
            s
            for s in specs
            if fnmatch.fnmatchcase(s.name, pat) or any(fnmatch.fnmatchcase(a.lower(), pat) for a in s.aliases)
        ]

    def __contains__(self, style: object) -> bool:
        if not isinstance(style, str):
            return False
        try:
            self.get(style)
        except StylekitError:
            return False
        return True

    def __len__(self) -> int:
        return len(self.list())

    def __iter__(self) -> Iterator[StyleSpec]:
        return iter(self.list())


_default: StyleRegistry | None = None
_default_lock = threading.Lock()


def _resolved(spec: StyleSpec, parts: list[tuple[StyleSpec, float]]) -> ResolvedStyle:
    """One spec and its weight as a resolved style (ResolvedStyle.of checks the weight)."""
    label = spec.name if spec.kind != "multistyle" else None
    return ResolvedStyle.of(spec.package(), [(s.index, s.name, w) for s, w in parts], label=label)


def default_registry() -> StyleRegistry:
    """The process-wide registry; it discovers built-ins, the user folder and plugins on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = StyleRegistry(discover=True)
        return _default


def _as_package(value: object, where: str) -> StylePackage:
    if isinstance(value, StylePackage):
        return value
    if isinstance(value, str | os.PathLike):
        return _checked_package(value)
    raise StylePackageError(
        f"{where} returned {type(value).__name__}; expected a StylePackage or a package path."
    )


@overload
def register_style(target: StyleSpec, *, registry: StyleRegistry | None = None) -> StyleSpec: ...
@overload
def register_style(
    target: StylePackage | str | os.PathLike[str], *, registry: StyleRegistry | None = None
) -> tuple[StyleSpec, ...]: ...
@overload
def register_style(target: F, *, registry: StyleRegistry | None = None) -> F: ...
@overload
def register_style(
    *,
    name: str | None = None,
    kind: Kind = "feedforward",
    description: str = "",
    aliases: tuple[str, ...] = (),
    metadata: Mapping[str, Any] | None = None,
    registry: StyleRegistry | None = None,
) -> Callable[[F], F]: ...


def register_style(
    target: StyleSpec | PackageLike | F | None = None,
    *,
    name: str | None = None,
    kind: Kind = "feedforward",
    description: str = "",
    aliases: tuple[str, ...] = (),
    metadata: Mapping[str, Any] | None = None,
    registry: StyleRegistry | None = None,
) -> StyleSpec | tuple[StyleSpec, ...] | F | Callable[[F], F]:
    """Register a style on the default registry (or ``registry``).

    - ``register_style(spec)`` registers a :class:`StyleSpec` and returns it;
    - ``register_style("my_style.pt")`` (or a StylePackage) registers the package's styles
      (one per sub-style for multistyle) and returns them;
    - as a decorator over a function returning a package path or StylePackage, the function
      becomes the lazy loader, called the first time the style is used::

          @register_style(name="my-style", description="...")   # kind defaults to feedforward
          def my_style() -> Path: ...

      Bare ``@register_style`` names the style after the function (underscores to dashes).

    A name or alias that is already taken raises :class:`DuplicateStyleError` naming both origins.
    """
    reg = registry if registry is not None else default_registry()
    if isinstance(target, StyleSpec):
        return reg.register(target)
    if isinstance(target, StylePackage | str | os.PathLike):
        pkg = _as_package(target, "register_style()")
        specs = specs_from_package(pkg, f"registered:{pkg.root / pkg.manifest.model_file}")
        return reg.register_all(specs)

    def decorate(fn: F) -> F:
        style_name = name if name is not None else fn.__name__.replace("_", "-").lower()
        where = f"{fn.__module__}.{fn.__qualname__}"

        def loader() -> StylePackage:
            return _as_package(fn(), where)

        meta = {"origin": f"registered:{where}", **(metadata or {})}
        reg.register(StyleSpec(style_name, kind, loader, description, tuple(aliases), meta))
        return fn

    if target is None:
        return decorate
    if callable(target):
        return decorate(target)
    raise BadOptionError(
        f"register_style() takes a StyleSpec, a package path or a function, not {type(target).__name__}."
    )
