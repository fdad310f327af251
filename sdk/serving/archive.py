"""``stylekit archive``: pack style packages as TorchServe model archives (``.mar``).

One archive per style package: a multistyle network becomes one archive that serves all its
sub-styles. An archive holds the package's TorchScript file, its manifest (and any other file
the manifest pins), the handler ``handlers/stylize_handler.py`` and the model-config YAML
(batch size, delay, workers, timeout) from ``sdk/serving/config/model-config/<name>.yaml`` or
``default.yaml``. The handler imports the installed ``sdk`` package: the server's Python
environment needs stylekit installed, the archive carries no copy of the SDK.

Each archive's sha256 is written beside it (``NAME.mar.sha256``, ``sha256sum -c`` format) and
printed with the rest of the summary as JSON.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sdk.errors import BadOptionError, StylekitError, StylePackageError
from sdk.package import StylePackage, read_package, sha256_file

log = logging.getLogger(__name__)

# Per-style TorchServe settings ship with the package: `stylekit archive` finds them installed.
DEFAULT_CONFIG_DIR = Path(__file__).resolve().parent / "config" / "model-config"


@dataclass(frozen=True)
class ArchiveInfo:
    name: str
    kind: str
    version: str
    archive: str
    sha256: str
    styles: list[str]
    model_config: str | None


def handler_file() -> Path:
    """The handler's source file, found by file: sdk never imports ``handlers`` (it imports sdk)."""
    spec = importlib.util.find_spec("handlers")  # finds a top-level package without running it
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    folder = Path(folders[0]).resolve() if folders else Path("handlers")
    path = folder / "stylize_handler.py"
    if not path.is_file():
        raise StylekitError(f"The stylekit handler {path} is missing from the installed package.")
    return path


def model_config_for(name: str, config_dir: Path | None) -> Path | None:
    folder = config_dir if config_dir is not None else DEFAULT_CONFIG_DIR
    for candidate in (folder / f"{name}.yaml", folder / "default.yaml"):
        if candidate.is_file():
            return candidate
    if config_dir is not None:
        raise BadOptionError(f"No {name}.yaml or default.yaml in {config_dir}.")
    log.warning("no model config for %s: TorchServe defaults apply (batch size 1)", name)
    return None


def build_archive(
    pkg: StylePackage,
    out_dir: str | os.PathLike[str],
    *,
    config_dir: str | os.PathLike[str] | None = None,
    force: bool = True,
) -> ArchiveInfo:
    """Verify ``pkg`` and write ``out_dir/<name>.mar`` plus its ``.sha256`` sidecar."""
    pkg.verify()
    man = pkg.manifest
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = model_config_for(man.name, Path(config_dir) if config_dir is not None else None)
    with tempfile.TemporaryDirectory(prefix="stylekit-archive-") as tmp:
        # The manifest as given (a registered style's identity, see packages_for), where the
        # handler looks for it: beside the model file, under the same stem.
        manifest_file = Path(tmp, "manifest", man.model_file).with_suffix(".json")
        manifest_file.parent.mkdir()
        manifest_file.write_bytes(man.to_json())
        extra = [manifest_file, *(pkg.root / f for f in man.files if f != man.model_file)]
        export = Path(tmp, "export")
        export.mkdir()
        cmd = [
            sys.executable, "-m", "model_archiver.model_packaging",
            "--model-name", man.name,
            "--version", man.version,
            "--serialized-file", str(pkg.model_path),
            "--handler", str(handler_file()),
            "--extra-files", ",".join(str(p) for p in extra),
            "--export-path", str(export),
        ]  # fmt: skip
        if config is not None:
            cmd += ["--config-file", str(config)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        built = export / f"{man.name}.mar"
        if done.returncode != 0 or not built.is_file():
            raise StylekitError(
                f"torch-model-archiver failed for {man.name!r} (exit {done.returncode}): "
                f"{(done.stderr or done.stdout).strip()[-800:]}"
            )
        target = out / built.name
        if target.exists() and not force:
            raise BadOptionError(f"{target} exists (use --force to overwrite).")
        # Copy then rename, so the model store never shows a half-written archive.
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(built, partial)
        os.replace(partial, target)
    digest = sha256_file(target)
    Path(f"{target}.sha256").write_text(f"{digest}  {target.name}\n", encoding="utf-8")
    styles = [s.name for s in sorted(man.styles, key=lambda s: s.index)] or [man.name]
    log.info("archived %s -> %s (sha256 %s)", man.name, target, digest[:12])
    return ArchiveInfo(
        man.name, man.kind, man.version, str(target), digest, styles, str(config) if config else None
    )


def packages_for(names: list[str], all_styles: bool) -> list[StylePackage]:
    """Style packages named by path or style name, or every registered one (``--all``).

    A style named or listed is archived as the registry knows it (:func:`~sdk.registry.as_registered`),
    so a plugin's style is served under the name, aliases, description and license it has
    locally; a package given by path is archived as its manifest says.
    """
    from sdk.registry import StyleSpec, as_registered, default_registry, looks_like_path

    registry = default_registry()
    specs: list[StyleSpec] = []
    paths: list[StylePackage] = []
    if all_styles:
        specs += registry.list()
        for error in registry.errors:
            log.warning("skipped a style source: %s", error.message)
    for name in names:
        if looks_like_path(name):
            paths.append(read_package(name))
            continue
        spec = registry.get(name)
        specs.append(spec)
        if spec.kind == "multistyle":  # the archive serves the whole network: every sub-style
            network = _key(spec.package(), "")
            specs += [s for s in registry.list() if s.kind == spec.kind and _key(s.package(), "") == network]
    claims: dict[tuple[Path, str | None], tuple[StylePackage, dict[str, StyleSpec]]] = {}
    for spec in specs:
        pkg = spec.package()
        claims.setdefault(_key(pkg, spec.name), (pkg, {}))[1].setdefault(spec.name, spec)
    found = {key: as_registered(pkg, named.values()) for key, (pkg, named) in claims.items()}
    for pkg in paths:
        found.setdefault(_key(pkg, pkg.manifest.name), pkg)
    if not found:
        raise BadOptionError("Nothing to archive: name style packages or styles, or pass --all.")
    by_name: dict[str, Path] = {}
    for (path, _), pkg in found.items():
        if pkg.manifest.name in by_name:
            raise StylePackageError(
                f"Two packages are named {pkg.manifest.name!r} ({by_name[pkg.manifest.name]} and {path}); "
                "archive them one at a time into different folders."
            )
        by_name[pkg.manifest.name] = path
    return list(found.values())


def _key(pkg: StylePackage, name: str) -> tuple[Path, str | None]:
    """Which archive a style goes into: one per multistyle network (all its sub-styles), one
    per name for a single-style file (a plugin may claim one file under two names)."""
    return pkg.model_path.resolve(), None if pkg.manifest.kind == "multistyle" else name
