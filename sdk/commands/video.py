"""``stylekit video IN -s STYLE -o OUT``: stylize a video file, with temporal consistency.

The output keeps the frames, their timestamps, the rotation metadata and the audio (copied).
``--scale`` sets the stroke size, ``--mask`` (an image for every frame, or a folder of one per
frame) where the style goes, ``--outside`` a second style for where the mask is black.
Progress (frames, frames/s, ETA) goes to stderr; the report of what was written to stdout
(``--json`` for one JSON line). Options and the style are checked before the first frame; any
error is one line and exit 2, and leaves nothing at ``-o``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sdk import runners, wire
from sdk.errors import BadOptionError, InvalidImageError, InvalidMaskError

if TYPE_CHECKING:
    from sdk.video import VideoProgress

#: The default of --temporal, kept equal to sdk.video's without importing PyAV at start.
DEFAULT_TEMPORAL = 0.8


def configure(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("input", metavar="IN", help="the video file to stylize")
    add("-s", "--style", required=True, help="a style name, a package file (.pt) or a blend a=0.7,b=0.3")
    add("-o", "--output", required=True, metavar="OUT", help="the video to write (.mp4 .m4v .mov .mkv .webm)")
    add("--style-image", metavar="P", help="the picture whose style to copy (arbitrary style)")
    add(
        "--strength",
        type=wire.arg_type(wire.parse_float, "--strength"),
        default=1.0,
        metavar="F",
        help="0..1: fade from the video (0) to the style (1)",
    )
    add("--preserve-color", action="store_true", help="keep the video's colours")
    add(
        "--max-side",
        type=wire.arg_type(wire.parse_int, "--max-side"),
        metavar="N",
        help=f"shrink so the longest side is at most N pixels (1 to {wire.MAX_SIDE})",
    )
    add(
        "--temporal",
        type=wire.arg_type(wire.parse_float, "--temporal"),
        default=DEFAULT_TEMPORAL,
        metavar="F",
        help=f"0..1: how much each frame follows the previous one along the motion "
        f"(0 = frame by frame; default {DEFAULT_TEMPORAL})",
    )
    add(
        "--scale",
        type=wire.arg_type(wire.parse_float, "--scale", wire.MIN_SCALE, wire.MAX_SCALE),
        default=1.0,
        metavar="X",
        help=f"stroke size, {wire.MIN_SCALE:g} to {wire.MAX_SCALE:g}: the network paints each frame "
        "at its size divided by X (default 1)",
    )
    add("--mask", metavar="PATH", help="where the style goes (white) and the video stays (black): an image "
        "for every frame, or a folder of one image per frame, in natural name order")  # fmt: skip
    add("--outside", metavar="STYLE", help="paint where the mask is black in this style (needs --mask)")
    add("--start", type=wire.arg_type(wire.parse_float, "--start", 0.0, 1e7), metavar="S",
        help="begin S seconds into the video")  # fmt: skip
    add("--duration", type=wire.arg_type(wire.parse_float, "--duration", 1e-3, 1e7), metavar="D",
        help="stylize D seconds (default: to the end)")  # fmt: skip
    add("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    add("--runner", choices=runners.RUNNERS, help="auto (default), compiled or torchscript")
    add("--json", action="store_true", help="print the report as one JSON line")
    add("-q", "--quiet", action="store_true", help="no progress on stderr")


class _Progress:
    """One line on stderr, rewritten in place on a terminal, else printed every few percent."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.shown = -1

    def __call__(self, p: VideoProgress) -> None:
        if self.tty:
            print(f"\rstylekit: {p}   ", end="", file=sys.stderr, flush=True)
            self.shown = 0
            return
        # Not a terminal (a log, CI): about 20 lines per clip, not one per frame.
        step = max(1, (p.total or 200) // 20)
        if p.done // step != self.shown or p.done == p.total:
            self.shown = p.done // step
            print(f"stylekit: {p}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty and self.shown >= 0:  # end the line rewritten in place
            print(file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from sdk.allocator import keep_freed_memory
    from sdk.registry import looks_like_path
    from sdk.video import stylize_video

    # A package file is the CLI user's own; names and blends are read as every front end reads them.
    style = args.style if looks_like_path(args.style) else wire.parse_style(args.style)
    if args.style_image is not None and not Path(args.style_image).is_file():
        raise InvalidImageError(f"Style image {args.style_image}: no such file.")
    outside = None
    if args.outside is not None:
        if args.mask is None:
            raise BadOptionError("--outside names the style where the mask is black; give --mask too.")
        outside = args.outside if looks_like_path(args.outside) else wire.parse_style(args.outside)
    if args.mask is not None and not Path(args.mask).expanduser().exists():
        raise InvalidMaskError(f"Mask {args.mask}: no such file or folder.")
    keep_freed_memory()  # this process only stylizes: reuse freed activations (sdk.allocator)
    progress = None if args.quiet else _Progress()
    try:
        report = stylize_video(
            args.input,
            args.output,
            style,
            style_image=args.style_image,
            strength=args.strength,
            preserve_color=args.preserve_color,
            max_side=args.max_side,
            temporal=args.temporal,
            scale=args.scale,
            mask=None if args.mask is None else str(Path(args.mask).expanduser()),
            outside=outside,
            start=args.start,
            duration=args.duration,
            device=args.device,
            runner=args.runner,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        audio = f", {report.audio_streams} audio stream(s) copied" if report.audio else ", no audio"
        print(f"{report.output}: {report.frames} frames, {report.size[0]}x{report.size[1]}, "
              f"{report.seconds:.2f} s{audio} ({report.frames_per_second:.1f} frames/s)")  # fmt: skip
    return 0
