"""``stylekit plugin new``: a style plugin as a complete, installable Python distribution.

A plugin is a distribution with an entry point in the group ``stylekit.styles`` (see
:mod:`sdk.registry`). Written by hand it is easy to get subtly wrong: a package-data rule that
misses the ``.pt`` file installs a plugin that lists its style and cannot run it. This module
writes one from style packages that cannot come out wrong:

- ``pyproject.toml``: the entry point, the package and every file of every style named one by
  one as package data, a dependency on this stylekit;
- ``<module>/__init__.py``: ``styles()`` returns the packages' manifests, so the registry reads
  each style's name, aliases, description, source, license and revision from its manifest;
- ``<module>/*``: the style packages, verified against their sha256 when copied;
- ``README.md``: what the styles are, how to install and use them.

The styles keep their names: a name that a built-in style has would never be used (the
first claim wins), so it is refused here.
"""

from __future__ import annotations

import json
import keyword
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any

from sdk import __version__
from sdk.errors import BadOptionError, StylePackageError
from sdk.info import StyleInfo
from sdk.package import StylePackage, read_package
from sdk.registry import ENTRY_POINT_GROUP, StyleRegistry, check_style_name

log = logging.getLogger(__name__)

# PEP 508 distribution names: letters, digits, '.', '_' and '-', starting and ending alphanumeric.
_DIST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")
# Top-level modules a plugin must not shadow: stylekit's own.
_TAKEN_MODULES = {"sdk", "training", "handlers", "stylekit"}
# An SPDX license expression (what pyproject's `license` takes since PEP 639): ids, LicenseRef-,
# AND / OR / WITH and parentheses. The id list itself is the build backend's to check.
_SPDX_ID = r"\(?[A-Za-z0-9][A-Za-z0-9.+-]*\)?"
_SPDX_RE = re.compile(rf"{_SPDX_ID}(?: (?:AND|OR|WITH) {_SPDX_ID})*")


@dataclass(frozen=True)
class NewPlugin:
    """What :func:`new_plugin` wrote."""

    root: Path  # the distribution's folder: ``pip install ROOT``
    distribution: str
    module: str
    styles: tuple[StyleInfo, ...]


def module_name(distribution: str) -> str:
    """The import name of a plugin distribution: ``My-Styles`` -> ``my_styles``."""
    return re.sub(r"[^a-z0-9]+", "_", distribution.lower()).strip("_")


def check_distribution_name(name: str) -> str:
    """A distribution name pip accepts, whose module name is a free Python identifier."""
    if not isinstance(name, str) or not _DIST_RE.fullmatch(name):
        raise BadOptionError(
            f"Invalid plugin name {name!r}: use letters, digits, '.', '_' and '-' (a Python distribution "
            "name, at most 100 characters, starting and ending with a letter or digit)."
        )
    module = module_name(name)
    if not module.isidentifier() or keyword.iskeyword(module) or module[0].isdigit():
        raise BadOptionError(f"Plugin name {name!r} gives module {module!r}: not a Python identifier.")
    if module in _TAKEN_MODULES:
        raise BadOptionError(f"Plugin name {name!r} gives module {module!r}, which stylekit itself uses.")
    return name


def spdx(expression: str) -> str | None:
    """``expression`` as an SPDX license expression (canonical form), or None if it is not one.

    With ``packaging`` installed (pip and setuptools bring it), ids are checked against the SPDX
    list as setuptools will check them when the plugin is built; otherwise only the form is.
    """
    if not _SPDX_RE.fullmatch(expression):
        return None
    try:
        from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression
    except ImportError:
        return expression
    try:
        return str(canonicalize_license_expression(expression))
    except InvalidLicenseExpression:
        return None


def check_license(expression: str) -> str:
    canonical = spdx(expression)
    if canonical is None:
        raise BadOptionError(
            f"License {expression!r} is not an SPDX expression (e.g. 'CC0-1.0', 'MIT OR Apache-2.0', "
            "'LicenseRef-Public-Domain')."
        )
    return canonical


def new_plugin(
    name: str,
    packages: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str] | None = None,
    *,
    version: str = "0.1.0",
    description: str = "",
    license: str = "",
    author: str = "",
) -> NewPlugin:
    """Write the plugin distribution ``name`` holding ``packages`` into ``out`` (default ``./name``).

    ``description`` is the distribution's one-line summary and, for a plugin of one
    single-style package, that style's description. ``license`` (SPDX) is the distribution's
    and every style's whose manifest names none. The folder is written whole or not at all.
    """
    check_distribution_name(name)
    module = module_name(name)
    if license:
        license = check_license(license)
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*([a-z]+[0-9]*)?", version):
        raise BadOptionError(f"Invalid plugin version {version!r}: use a version such as 0.1.0.")
    if "\n" in description or "\r" in description:
        raise BadOptionError("A plugin's --description is one line.")
    if not packages:
        raise BadOptionError("A plugin needs at least one style package (--from PACKAGE.pt).")
    root = Path(out) if out is not None else Path(name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise BadOptionError(f"{root} exists and is not empty: choose another --out, or remove it.")

    pkgs = [_plugin_package(read_package(p), description if len(packages) == 1 else "", license)
            for p in packages]  # fmt: skip
    styles = [info for pkg in pkgs for info in StyleInfo.from_package(pkg, origin=f"plugin:{name}")]
    _check_names(styles)
    files: dict[str, Path] = {}
    for pkg in pkgs:
        pkg.verify()
        for file in (*pkg.manifest.files, _manifest_name(pkg)):
            if PurePath(file).name != file:
                raise StylePackageError(f"Style {pkg.manifest.name!r}: {file!r} is not a plain file name.")
            if file in files:
                raise BadOptionError(f"Two packages have a file named {file!r}; rename one of them.")
            files[file] = pkg.root / file

    summary = description or f"stylekit styles: {', '.join(s.name for s in styles)}"
    if not license:  # the styles' own license, when they share one that pyproject can state
        shared = {s.license for s in styles}
        license = (spdx(shared.pop()) or "") if len(shared) == 1 else ""
    parent = root.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.", dir=parent))
    try:
        target = staging / module
        target.mkdir()
        for pkg in pkgs:
            for file in pkg.manifest.files:
                shutil.copyfile(pkg.root / file, target / file)
            (target / _manifest_name(pkg)).write_bytes(pkg.manifest.to_json())
        init = _init_py(name, [_manifest_name(p) for p in pkgs])
        (target / "__init__.py").write_text(init, encoding="utf-8")
        (staging / "pyproject.toml").write_text(
            _pyproject(name, module, version, summary, license, author, sorted(files)), encoding="utf-8"
        )
        (staging / "README.md").write_text(_readme(name, summary, styles), encoding="utf-8")
        if root.exists():
            root.rmdir()  # empty, checked above
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log.info("wrote style plugin %s (%d style(s)) to %s", name, len(styles), root)
    return NewPlugin(root, name, module, tuple(styles))


def _manifest_name(pkg: StylePackage) -> str:
    return PurePath(pkg.manifest.model_file).with_suffix(".json").as_posix()


def _plugin_package(pkg: StylePackage, description: str, license: str) -> StylePackage:
    """The package as the plugin ships it: identity filled in, provenance without host paths."""
    man = pkg.manifest
    named = replace(man, training=_portable(man.training) if man.training is not None else None)
    named.source = dict(man.source)
    if license and not named.source.get("license"):
        named.source["license"] = license
    if description and man.kind != "multistyle":
        named.description = description
    return StylePackage(named, pkg.root)


def _portable(value: Any) -> Any:
    """A training record with any absolute path reduced to its file name (older packages kept them)."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_portable(v) for v in value]
    if isinstance(value, str) and (value.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", value)):
        return PurePath(value.replace("\\", "/")).name
    return value


def _check_names(styles: list[StyleInfo]) -> None:
    """Style names valid, unique in the plugin, and not a built-in's (which would always win)."""
    # Built-ins only: no user folder, an entry-point group that nothing declares.
    builtin = StyleRegistry(discover=True, user_dir=os.devnull, entry_point_group=f"{ENTRY_POINT_GROUP}.no")
    seen: dict[str, str] = {}
    for style in styles:
        check_style_name(style.name)
        for key in (style.name, *style.aliases):
            low = key.lower()
            if low in seen:
                raise BadOptionError(f"Style name or alias {key!r} is used twice ({seen[low]}).")
            seen[low] = style.name
            if key in builtin:
                raise BadOptionError(
                    f"Style name or alias {key!r} of {style.name!r} is a built-in style's: the built-in "
                    "would always be used. Export the style under another name (stylekit export --name)."
                )


def _toml(text: str) -> str:
    # A JSON string is a valid TOML basic string for everything json.dumps writes.
    return json.dumps(text, ensure_ascii=False)


def _pyproject(
    name: str, module: str, version: str, summary: str, license: str, author: str, files: list[str]
) -> str:
    lines = [
        f"# Written by `stylekit plugin new` (stylekit {__version__}). Install with: pip install .",
        "[build-system]",
        'requires = ["setuptools>=77"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {_toml(name)}",
        f"version = {_toml(version)}",
        f"description = {_toml(summary)}",
        'readme = "README.md"',
        *([f"license = {_toml(license)}"] if license else []),
        *([f"authors = [{{ name = {_toml(author)} }}]"] if author else []),
        'requires-python = ">=3.10"',
        f"dependencies = [{_toml(f'stylekit>={__version__}')}]",
        "",
        f'[project.entry-points."{ENTRY_POINT_GROUP}"]',
        f"{_toml(name)} = {_toml(f'{module}:styles')}",
        "",
        "[tool.setuptools]",
        f"packages = [{_toml(module)}]",
        "",
        "# Every file of every style, by name: a pattern that misses the model file would install",
        "# a plugin that lists its styles and cannot run them.",
        "[tool.setuptools.package-data]",
        f"{module} = [{', '.join(_toml(f) for f in files)}]",
        "",
    ]
    return "\n".join(lines)


def _init_py(name: str, manifests: list[str]) -> str:
    return f'''"""The stylekit style plugin {name!r}, by `stylekit plugin new` (stylekit {__version__}).

Its entry point (group "{ENTRY_POINT_GROUP}") is ``styles``: the manifests of the style packages
beside this file. stylekit reads each style's name, aliases, description, source, license and
revision from its manifest, and loads the model only when the style is used.
"""

from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFESTS = {tuple(manifests)!r}


def styles() -> list[Path]:
    return [HERE / manifest for manifest in MANIFESTS]
'''


def _readme(name: str, summary: str, styles: list[StyleInfo]) -> str:
    rows = "\n".join(
        f"| `{s.name}` | {s.kind} | {_cell(s.description)} | {_cell(s.source)} | {_cell(s.license or '-')} |"
        for s in styles
    )
    first = styles[0].name
    commands = [
        (f"pip install ./{name}", "# this folder (or a wheel built from it)"),
        ("stylekit styles", f"# lists the styles above, origin plugin:{name}"),
        (f"stylekit stylize photo.jpg -s {first} -o out.png", ""),
    ]
    width = max(len(c) for c, _ in commands) + 2
    shell = "\n".join(f"{c.ljust(width)}{note}".rstrip() for c, note in commands)
    return f"""# {name}

{summary}

A style plugin for [stylekit](https://pypi.org/project/stylekit/), written by `stylekit plugin new`.

| style | kind | description | source | license |
|---|---|---|---|---|
{rows}

## Install and use

```bash
{shell}
```

In Python: `sdk.stylize("photo.jpg", style="{first}")`. To serve the styles from TorchServe,
`stylekit archive {first} -o model_archives/` (or `--all`), then `stylekit serve start`: the
server answers to the same names, with the same descriptions and licenses.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


__all__ = ["NewPlugin", "check_distribution_name", "module_name", "new_plugin"]
