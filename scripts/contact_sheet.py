"""Build a contact sheet from trained style packages: one row per style, content | painting | result.

    .venv/bin/python scripts/contact_sheet.py \
        --row ../shared/data/styles/wave.jpg runs/wave/wave.pt ../shared/data/content/golden_gate.jpg \
        --row ... --out docs/contact_sheet.jpg

(docs/offline_training.md has the exact command that made docs/contact_sheet.jpg.)

Each row shows the content photo and the painting (centre-cropped squares) and the photo
stylized through ``sdk.stylize`` with the package, at ``--side`` pixels, under a caption taken
from the package's manifest (steps, loss network, final losses).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

import sdk
from sdk import imaging
from sdk.package import read_package

CAPTION_HEIGHT = 28
GAP = 6


def square(path: Path, side: int) -> Image.Image:
    """The image at ``path`` (decoded by the SDK pipeline), centre-cropped to a square of ``side`` px."""
    image = Image.fromarray(imaging.decode(path).rgb)
    w, h = image.size
    m = min(w, h)
    box = ((w - m) // 2, (h - m) // 2, (w - m) // 2 + m, (h - m) // 2 + m)
    return image.crop(box).resize((side, side), Image.Resampling.LANCZOS)


def caption(package_path: Path) -> str:
    manifest = read_package(package_path).manifest
    record = manifest.training or {}
    losses = record.get("final_losses", {})
    network = record.get("loss_network", {}).get("name", "?")
    parts = [manifest.name, f"{record.get('steps', '?')} steps", f"loss network {network}"]
    parts += [f"{k} {losses[k]:.3g}" for k in ("content", "style") if k in losses]
    return ", ".join(parts)


def build(rows: list[tuple[Path, Path, Path]], side: int) -> Image.Image:
    font = ImageFont.load_default(size=16)
    height = len(rows) * (CAPTION_HEIGHT + side + GAP)
    sheet = Image.new("RGB", (3 * side + 2 * GAP, height), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (painting, package, content) in enumerate(rows):
        top = i * (CAPTION_HEIGHT + side + GAP)
        draw.text((4, top + 5), caption(package), fill="black", font=font)
        photo = square(content, side)
        result = sdk.stylize(photo, style=str(package), device="cpu")
        for j, tile in enumerate((photo, square(painting, side), result)):
            sheet.paste(tile, (j * (side + GAP), top + CAPTION_HEIGHT))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--row", nargs=3, action="append", required=True, type=Path,
        metavar=("PAINTING", "PACKAGE", "CONTENT"), help="one row: style image, trained .pt, content photo",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, required=True, help="output image (.jpg or .png)")
    parser.add_argument("--side", type=int, default=320, help="tile side in pixels (a multiple of 4)")
    parser.add_argument("--quality", type=int, default=88, help="JPEG quality")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    sheet = build([(p, pkg, c) for p, pkg, c in args.row], args.side)
    fmt = imaging.format_from_name(str(args.out))
    args.out.write_bytes(imaging.encode(sheet, fmt, quality=args.quality))
    print(f"{args.out}: {sheet.size[0]}x{sheet.size[1]}, {args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
