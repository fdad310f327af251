"""``stylekit eval``: score stylized pictures against their photos and the painting.

Either the pictures are given (``--outputs DIR``: each named after its photo, ``PHOTO.png`` or
``PHOTO-anything.png``), or ``--style NAME`` stylizes the photos first. Prints a table (or
``--json``) of the scores of :mod:`training.evaluate`; ``--sheet FILE`` writes a contact sheet.
With ``--video CLIP`` instead of ``--photos``, ``--outputs`` is the stylized clip (or ``--style``
makes it), a few frames get the picture scores, and the flicker along the clip's motion is
printed next to the input's own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--painting", type=Path, required=True, help="the style's painting")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--photos", type=Path, help="a folder of photos (or one photo) the outputs come from")
    what.add_argument("--video", type=Path, help="a clip; --outputs is then its stylized clip")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--style", help="stylize the photos with this style first (a name, blend or package)")
    source.add_argument(
        "--outputs", type=Path, help="stylized pictures, named after their photos (a folder; --video: a clip)"
    )
    parser.add_argument(
        "--style-image", type=Path, help="--style arbitrary: its painting (default --painting)"
    )
    parser.add_argument(
        "--sheet", type=Path, help="also write a contact sheet (painting, photos, outputs, scores)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--device", default="auto", help="--style: where to stylize (auto, cpu, cuda)")


def _photos(path: Path) -> list[Path]:
    from training.data import find_images

    return [path] if path.is_file() else find_images(path)


def _matching(photos: list[Path], outputs: Path) -> list[Path]:
    from sdk.errors import BadOptionError
    from training.data import find_images

    found = find_images(outputs) if outputs.is_dir() else []
    matches = []
    for photo in photos:
        same = [p for p in found if p.stem == photo.stem or p.stem.startswith(f"{photo.stem}-")]
        if len(same) != 1:
            what = "no output" if not same else f"{len(same)} outputs"
            raise BadOptionError(
                f"{what} in {outputs} for photo {photo.name}: "
                f"name each {photo.stem}.png or {photo.stem}-STYLE.png."
            )
        matches.append(same[0])
    return matches


def _run_video(args: argparse.Namespace) -> int:
    import tempfile

    from sdk.errors import BadOptionError
    from training import evaluate as ev

    if args.sheet is not None:
        raise BadOptionError("--sheet is for photos; with --video the scores are printed.")
    with tempfile.TemporaryDirectory() as tmp:
        stylized = args.outputs
        if args.style is not None:
            from sdk.video import stylize_video

            stylized = Path(tmp) / "stylized.mp4"
            stylize_video(args.video, stylized, args.style, style_image=args.style_image,
                          max_side=ev.WORK_SIDE, device=args.device)  # fmt: skip
        result = ev.evaluate_video(args.video, stylized, args.painting)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(ev.table(result.frames))
        print(f"flicker (warping error along the motion, /255): {result.warping_error:.2f}; "
              f"the input's own: {result.input_warping_error:.2f}")  # fmt: skip
    return 0


def run(args: argparse.Namespace) -> int:
    from training import evaluate as ev

    if args.video is not None:
        return _run_video(args)
    photos = _photos(args.photos)
    labels = [p.name for p in photos]
    if args.style is not None:
        evaluation, outputs = ev.evaluate_style(
            args.style,
            list(photos),
            args.painting,
            style_image=args.style_image,
            device=args.device,
            labels=labels,
        )
        pictures: list[object] = list(outputs)
    else:
        files = _matching(photos, args.outputs)
        evaluation = ev.evaluate(list(photos), list(files), args.painting, labels=labels)
        pictures = list(files)
    if args.sheet is not None:
        ev.contact_sheet(list(photos), pictures, args.painting, evaluation).save(args.sheet)  # type: ignore[arg-type]
    if args.json:
        json.dump(evaluation.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(ev.table(evaluation))
        if args.sheet is not None:
            print(f"contact sheet: {args.sheet}")
    return 0
