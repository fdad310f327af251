"""How the engine runs a generator: TorchScript, or kernels compiled ahead of time from its program.

``runner`` (an :class:`~sdk.engine.Engine` option, ``STYLEKIT_RUNNER``, ``--runner``):

- ``auto`` (default): the compiled runner when this machine's cache already holds the
  package's kernels, else TorchScript. It never compiles, so no command pays a compile it did
  not ask for;
- ``compiled``: the compiled runner, compiling into the cache first when needed (once per
  machine, torch version, device and dtype: ``stylekit compile`` does it ahead of time); when
  the package has no ``pt2`` program or compiling fails, TorchScript, with a warning;
- ``torchscript``: always the package's TorchScript file.

The compiled runner is AOTInductor: the package's ``torch.export`` program (``.pt2``, see
``training.artifacts``) compiled into a shared library by Inductor and loaded without
importing the compiler. Cache entries live in ``$STYLEKIT_HOME/cache/compiled/<key>/``; the key
hashes the program's sha256, the method, torch's version, the device, the dtype and the CPU's
vector ISA, so an entry of another torch or machine is never loaded. Each entry's
``meta.json`` repeats the key and pins ``model.pt2`` by sha256: a missing, stale or corrupt
entry is skipped (``auto``) or rebuilt (``compiled``), never run. Two processes compiling the
same entry take a file lock; the entry appears by one atomic rename.

A freshly compiled entry is checked against the TorchScript file on a real-looking picture
(:func:`sdk.programs.difference`'s bound) before it is cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk import programs, settings
from sdk.errors import BadOptionError, StylePackageError
from sdk.package import StylePackage, sha256_file

if TYPE_CHECKING:  # torch is imported where it is used: the CLI reads RUNNERS without it
    import torch

log = logging.getLogger(__name__)

RUNNERS: tuple[str, ...] = ("auto", "compiled", "torchscript")
# Bumped when the cache's layout or the compile recipe changes: old entries are then ignored.
CACHE_FORMAT = 1
ENTRY_FILE = "model.pt2"
META_FILE = "meta.json"


def check_runner(value: object) -> str:
    """``value`` as one of :data:`RUNNERS` (case-insensitive), or BadOptionError."""
    if isinstance(value, str) and value.strip().lower() in RUNNERS:
        return value.strip().lower()
    raise BadOptionError(f"runner must be one of {', '.join(RUNNERS)}, not {value!r}.")


def default_runner() -> str:
    """``$STYLEKIT_RUNNER``, else ``auto``."""
    value = settings.get(settings.RUNNER)
    return "auto" if value is None else check_runner(value)


def cache_root() -> Path:
    """Where compiled kernels are kept: ``$STYLEKIT_HOME/cache/compiled``."""
    return settings.home() / "cache" / "compiled"


@dataclass(frozen=True)
class CacheKey:
    """Everything a compiled library depends on; its digest names the cache entry."""

    program_sha256: str
    method: str
    torch_version: str
    device: str
    dtype: str
    cpu: str
    format: int = CACHE_FORMAT

    @classmethod
    def of(
        cls, package: StylePackage, method: str, device: torch.device, dtype: torch.dtype
    ) -> CacheKey | None:
        """The key of a package's method, or None when the package carries no program for it."""
        import torch as t  # not `torch`: that name is the annotations' (TYPE_CHECKING) import

        path = package.artifact("pt2", method)
        if path is None:
            return None
        digest = package.manifest.files[path.name]
        if device.type == "cuda":
            major, minor = t.cuda.get_device_capability(device)
            where = f"cuda:sm_{major}{minor}"
        else:
            where = device.type
        return cls(digest, method, t.__version__, where, str(dtype).removeprefix("torch."),
                   t.backends.cpu.get_cpu_capability())  # fmt: skip

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:32]


# --------------------------------------------------------------------------- compiled modules


class CompiledMethod:
    """One compiled method: contiguous tensors in, the output tensor back."""

    def __init__(self, path: Path, device: torch.device) -> None:
        import torch

        index = device.index if device.type == "cuda" and device.index is not None else -1
        loader_type = getattr(getattr(torch._C, "_aoti", None), "AOTIModelPackageLoader", None)
        if loader_type is not None:  # no import of torch._inductor (1.5 s here) on this path
            self._loader = loader_type(str(path), "model", False, 1, index)
            self._run: Callable[[list[torch.Tensor]], list[torch.Tensor]] = self._loader.boxed_run
        else:  # pragma: no cover - every torch that has aoti_load_package has the loader
            from torch._inductor import aoti_load_package

            model = aoti_load_package(str(path), device_index=index)
            self._run = lambda args: [model(*args)]

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        # The kernels were generated for contiguous inputs; a permuted view would be misread.
        outputs = self._run([a.contiguous() for a in args])
        return outputs[0]


class CompiledModule:
    """A compiled generator with the TorchScript module's call surface (``forward``, and
    ``style_vector``/``transfer`` for the arbitrary kind), which the engine's kind wrappers use."""

    runner = "compiled"

    def __init__(self, methods: dict[str, CompiledMethod]) -> None:
        self._methods = methods

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        return self._methods["forward"](*args)

    def style_vector(self, style_image: torch.Tensor) -> torch.Tensor:
        return self._methods["style_vector"](style_image)

    def transfer(self, image: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        return self._methods["transfer"](image, vector)


# --------------------------------------------------------------------------- the cache


@contextlib.contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """An exclusive lock on ``root/name.lock`` (released by the kernel if the process dies)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the atomic rename alone keeps entries whole
        yield
        return
    with open(root / f"{name}.lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _valid_entry(entry: Path, key: CacheKey) -> Path | None:
    """``entry``'s library when its meta matches ``key`` and its sha256; else None (and why, logged)."""
    library = entry / ENTRY_FILE
    if not entry.is_dir():
        return None
    try:
        meta = json.loads((entry / META_FILE).read_text(encoding="utf-8"))
        if meta.get("key") != asdict(key):
            log.warning(
                "compiled cache entry %s was made for %s, not this setup: ignored", entry, meta.get("key")
            )
            return None
        if sha256_file(library) != meta.get("sha256"):
            log.warning("compiled cache entry %s fails its checksum: ignored", entry)
            return None
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("compiled cache entry %s is unreadable (%s): ignored", entry, exc)
        return None
    return library


def _discard(entry: Path) -> None:
    """Move a bad entry aside and delete it (a reader that opened it keeps its open files)."""
    if entry.exists():
        trash = entry.with_name(f".trash-{entry.name}-{uuid.uuid4().hex[:8]}")
        with contextlib.suppress(OSError):
            entry.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)


def _compile(
    package: StylePackage, method: str, device: torch.device, dtype: torch.dtype, out: Path
) -> float:
    """Compile the package's program for ``method`` into ``out`` (AOTInductor); seconds taken."""
    import torch
    import torch._inductor

    manifest = package.manifest
    path = package.artifact("pt2", method)
    assert path is not None  # CacheKey.of checked it
    start = time.perf_counter()
    program = torch.export.load(str(path))
    if device.type != "cpu" or dtype != torch.float32:
        # The file is a float32 CPU program: trace it again on the device, in the dtype.
        module = program.module().to(device, dtype)
        program = torch.export.export(
            module, programs.example_inputs(manifest, method, device, dtype),
            dynamic_shapes=programs.dynamic_shapes(manifest, method), strict=False,
        )  # fmt: skip
    # Freezing folds the weights in as constants, so convolution weights are packed for oneDNN
    # once at compile time instead of on every call (measured 10-25 % faster here).
    with torch._inductor.config.patch(freezing=True):
        torch._inductor.aoti_compile_and_package(program, package_path=str(out))
    return time.perf_counter() - start


def _check_against(package: StylePackage, method: str, compiled: CompiledMethod, reference: Any,
                   device: torch.device, dtype: torch.dtype) -> programs.Difference:  # fmt: skip
    """The compiled method vs the TorchScript module on the example inputs and a landscape."""
    import torch

    from sdk import imaging
    from sdk.web.sample import landscape

    manifest = package.manifest
    args = list(programs.example_inputs(manifest, method, device, dtype))
    if method != "style_vector":
        picture = imaging.to_tensor(landscape(96 - 96 % max(1, manifest.input.multiple)))
        args[0] = picture.expand(args[0].shape[0], -1, -1, -1).to(device, dtype)
    with torch.inference_mode():
        want = getattr(reference, method)(*args) if method != "forward" else reference(*args)
        got = compiled(*args)
    return programs.difference(want, got)


def load_compiled(package: StylePackage, device: torch.device, dtype: torch.dtype, *, build: bool,
                  reference: Any = None) -> CompiledModule | None:  # fmt: skip
    """The package's compiled module from the cache (compiling it first when ``build``), or None.

    None means: use TorchScript. It is the answer when the package has no program, the cache
    has no valid entry and ``build`` is off, or compiling or checking failed (logged).
    ``reference``: the loaded TorchScript module a fresh compile is checked against.
    """
    methods: dict[str, CompiledMethod] = {}
    root = cache_root()
    for method in programs.METHODS[package.manifest.kind]:
        key = CacheKey.of(package, method, device, dtype)
        if key is None:
            if build:
                log.warning("style %s has no pt2 program: running TorchScript "
                            "(stylekit export --format pt2 adds one)",
                            package.manifest.name)  # fmt: skip
            return None
        entry = root / key.digest()
        library = _valid_entry(entry, key)
        if library is None and build:
            library = _build(package, method, key, entry, device, dtype, reference)
        if library is None:
            return None
        try:
            methods[method] = CompiledMethod(library, device)
        except (RuntimeError, OSError) as exc:
            log.warning("compiled kernels of %s in %s do not load (%s): running TorchScript",
                        package.manifest.name, entry, exc)  # fmt: skip
            with _locked(root, key.digest()):
                _discard(entry)
            return None
    return CompiledModule(methods)


def _build(package: StylePackage, method: str, key: CacheKey, entry: Path, device: torch.device,
           dtype: torch.dtype, reference: Any) -> Path | None:  # fmt: skip
    """Compile one entry under its lock; another process that held the lock may have made it."""
    root = entry.parent
    with _locked(root, entry.name):
        library = _valid_entry(entry, key)
        if library is not None:
            return library  # compiled by the process we waited for
        _discard(entry)
        tmp = root / f".tmp-{entry.name}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir(parents=True)
        try:
            log.info("compiling %s (%s) for %s %s: once per machine and torch version",
                     package.manifest.name, method, key.device, key.dtype)  # fmt: skip
            seconds = _compile(package, method, device, dtype, tmp / ENTRY_FILE)
            check = None
            if reference is not None:
                diff = _check_against(package, method, CompiledMethod(tmp / ENTRY_FILE, device), reference,
                                      device, dtype)  # fmt: skip
                if not diff.within_bound:
                    raise StylePackageError(
                        f"compiled {method} differs from TorchScript by mean {diff.mean:.3f}/255, "
                        f"max {diff.max:.3f}/255"
                    )
                check = diff.to_dict()
            meta = {"key": asdict(key), "sha256": sha256_file(tmp / ENTRY_FILE),
                    "style": package.manifest.name,
                    "compile_seconds": round(seconds, 1), "checked": check, "pid": os.getpid()}  # fmt: skip
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
            tmp.rename(entry)
        except Exception as exc:  # Inductor and the C++ compiler fail in many ways
            shutil.rmtree(tmp, ignore_errors=True)
            log.warning("compiling %s failed (%s): running TorchScript", package.manifest.name, exc)
            return None
    log.info("compiled %s (%s) in %.0f s into %s", package.manifest.name, method, seconds, entry)
    return entry / ENTRY_FILE


def cache_status(package: StylePackage, device: torch.device, dtype: torch.dtype) -> str:
    """``cached`` (every method has a valid entry), ``missing``, or ``no-program`` (no pt2)."""
    for method in programs.METHODS[package.manifest.kind]:
        key = CacheKey.of(package, method, device, dtype)
        if key is None:
            return "no-program"
        if _valid_entry(cache_root() / key.digest(), key) is None:
            return "missing"
    return "cached"


def cached_entries() -> list[dict[str, Any]]:
    """The meta of every entry in the cache (for ``stylekit compile --list``)."""
    root = cache_root()
    found = []
    for meta in sorted(root.glob(f"*/{META_FILE}")) if root.is_dir() else []:
        with contextlib.suppress(OSError, ValueError):
            found.append({"entry": meta.parent.name, **json.loads(meta.read_text(encoding="utf-8"))})
    return found


__all__ = [
    "CACHE_FORMAT",
    "RUNNERS",
    "CacheKey",
    "CompiledMethod",
    "CompiledModule",
    "cache_root",
    "cache_status",
    "cached_entries",
    "check_runner",
    "default_runner",
    "load_compiled",
]
