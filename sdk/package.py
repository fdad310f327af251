"""Style packages: a TorchScript generator ``<stem>.pt`` and its manifest ``<stem>.json``.

The manifest says what the file is (kind, input contract, sub-styles, source, license,
training record) and pins every file by sha256. It is the one artifact that the registry,
the local engine, ``stylekit archive`` and the TorchServe handler all read; none of them
needs to know how a package was made.

Kinds and their TorchScript call signatures (all images RGB, NCHW, float in [0, 1]):

- ``feedforward``: ``forward(image) -> image``
- ``multistyle``:  ``forward(image, style_weights[N, S]) -> image``; a row of weights blends
  the sub-styles listed in ``styles``.
- ``arbitrary``:   ``forward(image, style_image) -> image``, plus ``style_vector(style_image)``
  and ``transfer(image, vector)`` so a style image is encoded once per request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal, cast

from sdk import wire
from sdk._fs import atomic_write
from sdk.errors import BadOptionError, StylePackageError, UnknownStyleError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

FORMAT = "stylekit.style/1"
Kind = Literal["feedforward", "multistyle", "arbitrary"]
KINDS: tuple[Kind, ...] = ("feedforward", "multistyle", "arbitrary")


@dataclass(frozen=True)
class InputContract:
    """What the generator expects: RGB NCHW float in [0, 1], sides a multiple of ``multiple``."""

    multiple: int = 4
    color: str = "RGB"
    layout: str = "NCHW"
    value_range: tuple[float, float] = (0.0, 1.0)
    dtype: str = "float32"
    # Whether float16 inference is allowed on GPU (False where it was measured to hurt).
    half: bool = True
    # Arbitrary kind: side the style image is resized to before style_vector().
    style_image_size: int | None = None


@dataclass(frozen=True)
class SubStyle:
    """One style inside a multistyle network: its row in ``style_weights``."""

    index: int
    name: str
    description: str = ""
    aliases: tuple[str, ...] = ()


#: The model file formats a package can carry. ``torchscript`` is the package's ``model_file``
#: (always there: the card and TorchServe load it); the others sit beside it.
ARTIFACT_FORMATS: tuple[str, ...] = ("torchscript", "pt2", "onnx")


@dataclass(frozen=True)
class Artifact:
    """What one model file of a package is: its format, the method it holds, which torch wrote it.

    A TorchScript file holds every method of the kind; a ``pt2`` (``torch.export`` program) or
    ``onnx`` file holds one: ``forward`` (feedforward, multistyle), or ``style_vector`` /
    ``transfer`` (arbitrary). ``verified`` is how it compared with the eager network when it
    was written: the images, and the mean and max absolute difference in 1/255 units.
    """

    format: str
    method: str = "forward"
    torch: str = ""
    opset: int | None = None
    verified: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.format not in ARTIFACT_FORMATS:
            raise StylePackageError(
                f"Unknown model file format {self.format!r}; expected one of {ARTIFACT_FORMATS}."
            )


@dataclass
class Manifest:
    name: str
    kind: Kind
    model_file: str
    version: str = "1.0.0"
    description: str = ""
    input: InputContract = field(default_factory=InputContract)
    styles: tuple[SubStyle, ...] = ()
    # Where the style comes from: title, artist, license, url, attribution.
    source: dict[str, Any] = field(default_factory=dict)
    # Other names of a feedforward or arbitrary style (a multistyle network's are per sub-style).
    aliases: tuple[str, ...] = ()
    # Set when trained here: config, final losses, steps, thumbnail file name.
    training: dict[str, Any] | None = None
    # File name (relative to the manifest) -> sha256 hex digest.
    files: dict[str, str] = field(default_factory=dict)
    format: str = FORMAT
    # Model file name -> what it is (format, method, torch version). A manifest written before
    # this field existed has only its TorchScript ``model_file``.
    artifacts: dict[str, Artifact] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise StylePackageError(
                f"Style package {self.name!r} has unknown kind {self.kind!r}; expected one of {KINDS}."
            )
        if self.kind == "multistyle" and not self.styles:
            raise StylePackageError(f"Multistyle package {self.name!r} lists no sub-styles.")
        for file in self.artifacts:
            if file != PurePath(file).name:
                raise StylePackageError(
                    f"Style package {self.name!r}: model file {file!r} must be a plain file name."
                )
        if self.kind == "multistyle" and self.aliases:
            raise StylePackageError(
                f"Multistyle package {self.name!r} has aliases of its own; a network's are its sub-styles'."
            )
        self.aliases = tuple(self.aliases)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input"]["value_range"] = list(self.input.value_range)
        return data

    def to_json(self) -> bytes:
        """The manifest file's bytes (``<stem>.json`` beside the model file)."""
        return (json.dumps(self.to_dict(), indent=2) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            fmt = data.get("format", FORMAT)
            if fmt != FORMAT:
                raise StylePackageError(f"Unsupported style package format {fmt!r}; expected {FORMAT!r}.")
            inp = dict(data.get("input", {}))
            if "value_range" in inp:
                inp["value_range"] = tuple(inp["value_range"])
            styles = tuple(
                SubStyle(
                    index=int(s["index"]),
                    name=str(s["name"]),
                    description=str(s.get("description", "")),
                    aliases=tuple(s.get("aliases", ())),
                )
                for s in data.get("styles", ())
            )
            return cls(
                name=str(data["name"]),
                kind=cast(Kind, data["kind"]),
                model_file=str(data["model_file"]),
                version=str(data.get("version", "1.0.0")),
                description=str(data.get("description", "")),
                input=InputContract(**inp),
                styles=styles,
                source=dict(data.get("source", {})),
                aliases=tuple(str(a) for a in data.get("aliases", ())),
                training=data.get("training"),
                files=dict(data.get("files", {})),
                format=fmt,
                artifacts={
                    str(file): Artifact(**dict(entry))
                    for file, entry in dict(data.get("artifacts", {})).items()
                },
            )
        except StylePackageError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise StylePackageError(f"Malformed style manifest: {exc!r}.") from exc


@contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Silence torch's FutureWarning that TorchScript is deprecated, around our own jit calls.

    TorchScript is the package format by design (TorchServe and C++ runtimes load it); torch
    2.14 warns on every ``torch.jit`` call, which would reach CLI users on every run.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=FutureWarning)
        yield


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_path_for(path: str | os.PathLike[str]) -> Path:
    """``x.pt`` or ``x.json`` -> ``x.json``; a folder -> the one manifest inside it."""
    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.json"))
        if len(found) != 1:
            raise StylePackageError(f"Expected exactly one manifest (*.json) in {p}, found {len(found)}.")
        return found[0]
    return p.with_suffix(".json")


@dataclass(frozen=True)
class StylePackage:
    """A manifest and the folder it lives in."""

    manifest: Manifest
    root: Path

    @property
    def model_path(self) -> Path:
        return self.root / self.manifest.model_file

    def artifact(self, format: str, method: str = "forward") -> Path | None:
        """The package's model file of ``format`` holding ``method``, or None when it has none.

        ``torchscript`` is always the ``model_file``. Only files the manifest pins (``files``)
        count, so a stray file beside a package is never loaded.
        """
        if format == "torchscript":
            return self.model_path
        for file, art in self.manifest.artifacts.items():
            if art.format == format and art.method == method and file in self.manifest.files:
                return self.root / file
        return None

    def verify(self) -> None:
        """Check that every file named in the manifest exists and matches its sha256."""
        for name, expected in self.manifest.files.items():
            file = self.root / name
            if not file.is_file():
                raise StylePackageError(f"Style {self.manifest.name!r}: file {file} is missing.")
            actual = sha256_file(file)
            if actual != expected:
                raise StylePackageError(
                    f"Style {self.manifest.name!r}: {file} fails its checksum "
                    f"(sha256 {actual[:12]}..., manifest says {expected[:12]}...)."
                )

    def resolve(self, style: str | Mapping[str, float] | None = None) -> ResolvedStyle:
        """A style of this package by its manifest alone (no registry): what a server of one
        package needs. ``None``: the package's only style. Names and aliases are matched
        case-insensitively and are never files; a blend maps sub-style names to weights."""
        manifest = self.manifest
        if style is None:
            if manifest.kind != "multistyle":
                return ResolvedStyle.of(self)
            if len(manifest.styles) == 1:  # a network grown by one row (--extend) lists one style
                return self.resolve(manifest.styles[0].name)
            names = ", ".join(sub.name for sub in manifest.styles)
            raise BadOptionError(f"Model {manifest.name!r} has several styles; choose one of: {names}.")
        # lowercased name or alias -> (sub-style index, name); a single-style package is its name.
        known: dict[str, tuple[int | None, str]] = {
            name.lower(): (None, manifest.name) for name in (*manifest.aliases, manifest.name)
        }
        if manifest.kind == "multistyle":
            known = {alias.lower(): (sub.index, sub.name) for sub in manifest.styles for alias in sub.aliases}
            known.update({sub.name.lower(): (sub.index, sub.name) for sub in manifest.styles})
        parts = []
        for name, weight in ({style: 1.0} if isinstance(style, str) else dict(style)).items():
            found = known.get(name.strip().lower())
            if found is None:
                raise UnknownStyleError(wire.unknown_style_message(name, {k: v[1] for k, v in known.items()}))
            parts.append((*found, weight))
        return ResolvedStyle.of(self, parts)

    def load_module(self, map_location: str | torch.device = "cpu", verify: bool = True) -> Any:
        """Load the TorchScript generator (verified against the manifest first)."""
        import torch

        if verify:
            self.verify()
        elif not self.model_path.is_file():
            raise StylePackageError(f"Style {self.manifest.name!r}: file {self.model_path} is missing.")
        try:
            with quiet_torchscript():
                module = torch.jit.load(str(self.model_path), map_location=map_location)  # type: ignore[no-untyped-call]
        except (RuntimeError, ValueError) as exc:
            raise StylePackageError(
                f"Style {self.manifest.name!r}: {self.model_path} is not a loadable TorchScript file ({exc})."
            ) from exc
        module.eval()
        return module


@dataclass(frozen=True)
class ResolvedStyle:
    """A style choice made concrete: the package to run and, for a multistyle network, its
    ``style_weights`` row. What the engine runs; made by :meth:`StylePackage.resolve` or
    :meth:`sdk.registry.StyleRegistry.resolve`, never by the engine itself."""

    package: StylePackage
    label: str  # for messages and logs: a name, or "0.70 a + 0.30 b"
    weights: tuple[float, ...] | None = None  # multistyle only, normalised to sum 1

    @property
    def kind(self) -> Kind:
        return self.package.manifest.kind

    @classmethod
    def of(cls, package: StylePackage, parts: Sequence[tuple[int | None, str, object]] = (),
           label: str | None = None) -> ResolvedStyle:  # fmt: skip
        """``package`` as a whole (feedforward, arbitrary), or a blend of its sub-styles:
        ``parts`` are (index, name, weight), weights finite and >= 0, normalised here."""
        manifest = package.manifest
        single = manifest.kind != "multistyle"
        if single and len(parts) > 1:
            raise BadOptionError(f"Only sub-styles of one multistyle network can be blended; "
                                 f"{manifest.name!r} is {manifest.kind}.")  # fmt: skip
        if not single and not parts:
            raise BadOptionError("A style blend needs at least one style name and weight.")
        weights = [
            (index, name, wire.check_number(f"The weight of {wire.shown(name)}", w, 0.0, wire.MAX_WEIGHT))
            for index, name, w in parts
        ]
        total = sum(w for _, _, w in weights)
        if weights and total <= 0:
            raise BadOptionError("The weights of a style blend are all zero; make at least one positive.")
        if single:
            return cls(package, label or manifest.name)
        valid = {s.index for s in manifest.styles}
        row = [0.0] * (max(valid) + 1)
        for index, name, weight in weights:
            if index is None or index not in valid:
                raise StylePackageError(
                    f"Style {name!r} names no valid sub-style index of network {manifest.name!r}."
                )
            row[index] += weight / total
        if label is None:
            mix = " + ".join(f"{w / total:.2f} {n}" for _, n, w in weights)
            label = weights[0][1] if len(weights) == 1 else mix
        return cls(package, label, tuple(row))


def read_package(path: str | os.PathLike[str]) -> StylePackage:
    """Read the manifest of the package at ``path`` (``.pt``, ``.json`` or its folder)."""
    mpath = manifest_path_for(path)
    if not mpath.is_file():
        raise StylePackageError(f"No style manifest at {mpath} (a style package is NAME.pt plus NAME.json).")
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StylePackageError(f"Cannot read style manifest {mpath}: {exc}.") from exc
    if not isinstance(data, dict):
        raise StylePackageError(f"Style manifest {mpath} is not a JSON object.")
    return StylePackage(Manifest.from_dict(data), mpath.parent)


def write_package(
    module: Any,
    out_dir: str | os.PathLike[str],
    manifest: Manifest,
    extra_files: dict[str, bytes] | None = None,
) -> StylePackage:
    """Save a scripted/traced module and its manifest into ``out_dir``; files are written atomically.

    ``extra_files`` (e.g. a style thumbnail) are written beside the model and pinned in the
    manifest too. Returns the written package.
    """
    import io

    import torch

    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with quiet_torchscript():
        torch.jit.save(module, buf)
    atomic_write(root / manifest.model_file, buf.getvalue())
    files = {manifest.model_file: sha256_file(root / manifest.model_file)}
    manifest.artifacts = {manifest.model_file: Artifact("torchscript", torch=torch.__version__)}
    for name, data in (extra_files or {}).items():
        atomic_write(root / name, data)
        files[name] = sha256_file(root / name)
    manifest.files = files
    atomic_write((root / manifest.model_file).with_suffix(".json"), manifest.to_json())
    log.info("wrote style package %s to %s", manifest.name, root)
    return StylePackage(manifest, root)


__all__ = [
    "ARTIFACT_FORMATS",
    "FORMAT",
    "KINDS",
    "Artifact",
    "InputContract",
    "Kind",
    "Manifest",
    "StylePackage",
    "SubStyle",
    "manifest_path_for",
    "quiet_torchscript",
    "read_package",
    "sha256_file",
    "write_package",
]
