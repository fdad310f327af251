"""``stylekit stylize IN... -s STYLE``: stylize image files and folders, locally or on a server.

One input writes one file (``-o out.png``, or ``<stem>-<style>.<ext>`` in ``-o DIR`` / the
current folder); several inputs or a folder write into a folder, keeping the folders' layout.
Everything that does not depend on the image (style, options, device, output names) is
checked before the first image is touched: such an error stops the run (exit 2). With several
inputs, a bad image is reported on stderr and the others go on; the exit status is then 1.

Speed: this module imports only the standard library at start; torch comes with the engine,
tqdm only when a progress bar is shown, httpx only with ``--server``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdk import runners, wire
from sdk._fs import atomic_write
from sdk.errors import (
    AuthenticationError,
    BadOptionError,
    InvalidImageError,
    ServerError,
    ServerUnavailableError,
    StylekitError,
)
from sdk.formats import SUFFIX, format_from_name

if TYPE_CHECKING:
    from sdk.api import Backend, StyleArg

log = logging.getLogger(__name__)

# Suffixes picked up when walking a folder (a file named explicitly is always tried).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="IN", help="image files, or folders (searched for images)"
    )
    parser.add_argument(
        "-s",
        "--style",
        required=True,
        help="style name or alias, a package file (.pt), or a blend 'a=0.7,b=0.3'",
    )
    parser.add_argument(
        "--style-image", metavar="P", help="the picture whose style to copy (arbitrary style)"
    )
    parser.add_argument(
        "--strength",
        type=wire.arg_type(wire.parse_float, "--strength"),
        default=1.0,
        metavar="F",
        help="0..1: fade from the photo (0) to the style (1)",
    )
    parser.add_argument("--preserve-color", action="store_true", help="keep the photo's colours")
    parser.add_argument(
        "--scale",
        type=wire.arg_type(wire.parse_float, "--scale", wire.MIN_SCALE, wire.MAX_SCALE),
        default=1.0,
        metavar="F",
        help=f"stroke size: 2 paints strokes twice as big ({wire.MIN_SCALE:g} to {wire.MAX_SCALE:g})",
    )
    parser.add_argument(
        "--mask",
        metavar="IMG",
        help="paint only where this image is white (black keeps the photo; any size of the photo's shape)",
    )
    parser.add_argument(
        "--outside",
        metavar="STYLE",
        help="with --mask: the style where the mask is black, instead of the photo",
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT|DIR",
        help="output file (one input) or folder (default: current folder)",
    )
    parser.add_argument(
        "--format",
        choices=sorted(suffix[1:] for suffix in SUFFIX.values()),
        help="output format (default: from -o, else png)",
    )
    parser.add_argument(
        "--max-side",
        type=wire.arg_type(wire.parse_int, "--max-side"),
        metavar="N",
        help=f"shrink so the longest side is at most N pixels (1 to {wire.MAX_SIDE})",
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument(
        "--runner",
        choices=runners.RUNNERS,
        help="auto (default: compiled kernels when cached, see stylekit compile), compiled or torchscript",
    )
    parser.add_argument("--server", metavar="URL", help="stylize on a stylekit TorchServe server instead")
    parser.add_argument("--json", action="store_true", help="print one JSON line per image")


@dataclass(frozen=True)
class Job:
    source: Path
    output: Path | None  # None: the input does not exist (reported as a failed input)


# ---------------------------------------------------------------------------------------------
# Planning: every check that does not need an image.


def _style_label(style: str | Mapping[str, float], style_image: str | None, canonical: dict[str, str]) -> str:
    """The ``<style>`` part of output names: the style's name, blends joined by '+'."""
    if isinstance(style, Mapping):
        label = "+".join(canonical.get(name, name) for name in style)
    else:
        label = canonical.get(style, Path(style).stem if style.lower().endswith((".pt", ".json")) else style)
    if style_image:
        label += "-" + Path(style_image).stem
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", label)


def _output_format(args: argparse.Namespace, out_file: Path | None) -> str:
    chosen = format_from_name(args.format) if args.format else None
    if out_file is not None:
        from_name = format_from_name(out_file.name)
        if chosen and chosen != from_name:
            raise BadOptionError(
                f"--format {args.format} does not match the output file name {out_file.name}."
            )
        return from_name
    return chosen or "PNG"


def _inside(out_dir: Path, folder: Path) -> Path | None:
    """``out_dir`` (resolved) when it lies strictly inside ``folder``, else None."""
    out, root = out_dir.resolve(), folder.resolve()
    return out if out != root and out.is_relative_to(root) else None


def _images_in(folder: Path, skip: Path | None) -> list[Path]:
    found = []
    for path in folder.rglob("*"):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if skip is not None and path.resolve().is_relative_to(skip):
            continue  # earlier results in an output folder inside the input folder
        if path.is_file():
            found.append(path)
    return sorted(found)


def plan(args: argparse.Namespace, label: str) -> tuple[list[Job], str, bool]:
    """Jobs (input -> output), the output format, and whether this is a batch (folder output)."""
    inputs = [Path(p).expanduser() for p in args.inputs]
    batch = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    out = Path(args.output).expanduser() if args.output else None
    out_is_file = (
        out is not None
        and not out.is_dir()
        and not str(args.output).endswith(("/", os.sep))
        and bool(out.suffix)
    )
    if batch and out_is_file:
        raise BadOptionError(
            f"Several inputs or a folder need a folder for -o, not the file name {args.output}."
        )
    if batch and out is not None and out.exists() and not out.is_dir():
        raise BadOptionError(f"-o {args.output} is a file; several inputs or a folder need a folder.")
    out_file = out if out_is_file else None
    out_dir = out or Path(".")  # used when out_file is None
    fmt = _output_format(args, out_file)
    suffix = SUFFIX[fmt]

    jobs: list[Job] = []
    for given in inputs:
        if given.is_dir():
            found = _images_in(given, skip=_inside(out_dir, given))
            if not found:
                print(f"stylekit: warning: no images in folder {given}", file=sys.stderr)
            for path in found:
                rel = path.relative_to(given)
                jobs.append(Job(path, out_dir / rel.parent / f"{path.stem}-{label}{suffix}"))
        elif not given.exists():
            if not batch:
                raise InvalidImageError(f"{given}: no such file or directory.")
            jobs.append(Job(given, None))
        else:
            target = out_file or out_dir / f"{given.stem}-{label}{suffix}"
            jobs.append(Job(given, target))
    if not jobs:
        raise BadOptionError("No images found in " + ", ".join(str(p) for p in inputs) + ".")

    claimed: dict[Path, Path] = {}
    for job in jobs:
        if job.output is None:
            continue
        key = job.output.resolve()
        if key == job.source.resolve():
            raise BadOptionError(f"Refusing to overwrite the input {job.source} with its result.")
        if key in claimed:
            raise BadOptionError(f"{claimed[key]} and {job.source} would both be written to {job.output}.")
        claimed[key] = job.source
    return jobs, fmt, batch


# ---------------------------------------------------------------------------------------------
# Running


class OutputWriteError(BadOptionError):
    """An output file cannot be written (permissions, a full disk, a file where a folder goes)."""


def _write(path: Path, data: bytes) -> None:
    """Write atomically: an interrupted run leaves no half-written image."""
    try:
        atomic_write(path, data)
    except OSError as exc:
        raise OutputWriteError(f"Cannot write {path}: {exc.strerror or exc}.") from exc


def _is_per_image(exc: StylekitError) -> bool:
    """Errors that belong to one input; anything else (style, options, server down) stops the run."""
    if isinstance(exc, ServerUnavailableError | AuthenticationError):
        return False
    return isinstance(exc, InvalidImageError | ServerError | OutputWriteError)


class _Reporter:
    """Prints results and per-input errors, through tqdm's writer while a bar is shown."""

    def __init__(self, total: int, as_json: bool) -> None:
        self.as_json = as_json
        self.bar: Any = None
        if total > 1 and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="img", file=sys.stderr, leave=False)

    def _out(self, line: str, stream: Any) -> None:
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def done(self, job: Job, size: tuple[int, int], seconds: float) -> None:
        if self.as_json:
            record = {
                "input": str(job.source),
                "output": str(job.output),
                "size": list(size),
                "seconds": round(seconds, 3),
            }
            self._out(json.dumps(record), sys.stdout)
        else:
            self._out(str(job.output), sys.stdout)
        self.step()

    def failed(self, job: Job, message: str, code: str) -> None:
        # Image errors usually name the file already; say which input it was only when not.
        where = "" if job.source.name in message else f"{job.source}: "
        self._out(f"stylekit: error: {where}{message}", sys.stderr)
        if self.as_json:
            self._out(json.dumps({"input": str(job.source), "error": code, "message": message}), sys.stdout)
        self.step()

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _read_mask_file(path: Path) -> bytes:
    """The mask file's bytes, read once and checked before any photo (one line, exit 2)."""
    from sdk import imaging
    from sdk.errors import InvalidMaskError

    if not path.is_file():
        raise InvalidMaskError(f"Mask {path}: no such file.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidMaskError(f"Cannot read the mask {path}: {exc.strerror or exc}.") from None
    imaging.read_mask(data)  # unreadable or empty: InvalidMaskError now, not once per photo
    return data


def run(args: argparse.Namespace) -> int:
    from sdk import api, imaging
    from sdk.registry import looks_like_path

    # A package file is the CLI user's own; names and blends are read as every front end reads them.
    style = args.style if looks_like_path(args.style) else wire.parse_style(args.style)
    strength = args.strength
    if args.style_image is not None and not Path(args.style_image).is_file():
        raise InvalidImageError(f"Style image {args.style_image}: no such file.")
    outside = None if args.outside is None else wire.parse_style(args.outside)
    if outside is not None and args.mask is None:
        raise BadOptionError("--outside names the style where the mask is black; give --mask too.")
    mask: bytes | None = None
    if args.mask is not None:
        mask = _read_mask_file(Path(args.mask))

    backend: Backend | None = None
    canonical: dict[str, str] = {}
    local_style: StyleArg = style  # resolved once below when stylizing here
    if args.server:
        if args.device != "auto" or args.runner is not None:
            raise BadOptionError(
                "--device and --runner apply to local stylization; the server picks its own."
            )
        from sdk.client import StyleClient

        backend = StyleClient(args.server)
    else:
        from sdk.allocator import keep_freed_memory

        keep_freed_memory()  # this process only stylizes: reuse freed activations (sdk.allocator)
        from sdk.registry import default_registry

        api.engine(args.device, args.runner)  # a missing GPU is an error before any image is read
        # Resolve up front: an unknown style or a bad blend stops here, and names become canonical.
        registry = default_registry()
        names = list(style) if isinstance(style, Mapping) else [style]
        for name in names:
            canonical[name] = registry.get(name).name
        local_style = registry.resolve(style)
        if outside is not None:
            registry.resolve(outside)  # an unknown outside style stops here too
    jobs, fmt, batch = plan(args, _style_label(style, args.style_image, canonical))
    reporter = _Reporter(len(jobs), args.json)
    failures = 0
    try:
        for job in jobs:
            if job.output is None:
                failures += 1
                reporter.failed(job, "no such file or directory.", InvalidImageError.code)
                continue
            start = time.perf_counter()
            try:
                image = api.stylize(
                    job.source,
                    local_style,
                    style_image=args.style_image,
                    strength=strength,
                    preserve_color=args.preserve_color,
                    max_side=args.max_side,
                    scale=args.scale,
                    mask=mask,
                    outside=outside,
                    device=args.device,
                    runner=args.runner,
                    backend=backend,
                )
                _write(job.output, imaging.encode(image, fmt))
            except StylekitError as exc:
                if not batch or not _is_per_image(exc):
                    raise
                failures += 1
                reporter.failed(job, exc.message, exc.code)
                continue
            reporter.done(job, image.size, time.perf_counter() - start)
    finally:
        reporter.close()
    if failures:
        print(f"stylekit: {failures} of {len(jobs)} inputs failed", file=sys.stderr)
        return 1
    return 0
