"""``stylekit web``: serve the demo page and its API with uvicorn."""

from __future__ import annotations

import argparse
from pathlib import Path

from sdk.errors import BadOptionError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--server",
        metavar="URL",
        help="stylize on this TorchServe (stylekit serve) instead of the local engine",
    )
    parser.add_argument("--token", help="TorchServe inference key (default: the client's token lookup)")
    parser.add_argument("--device", default="auto", help="local engine device: auto, cpu, cuda, cuda:1, ...")
    parser.add_argument(
        "--sample",
        type=Path,
        metavar="PHOTO",
        help="photo the style thumbnails are painted on (default: a drawn landscape)",
    )
    parser.add_argument(
        "--max-upload-mb", type=float, default=20.0, help="largest upload accepted (default: %(default)s MB)"
    )
    parser.add_argument(
        "--max-side", type=int, default=2048, help="longest side stylized; larger photos are scaled down"
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from sdk.web.app import WebSettings, create_app

    if args.max_upload_mb <= 0 or args.max_side < 1:
        raise BadOptionError("--max-upload-mb and --max-side must be positive.")
    if args.server and args.device != "auto":
        raise BadOptionError("--device applies to the local engine; with --server the server picks its own.")
    if args.sample is not None and not args.sample.is_file():
        raise BadOptionError(f"--sample: {args.sample} is not a file.")
    settings = WebSettings(
        max_upload_bytes=int(args.max_upload_mb * 2**20), max_side=args.max_side, sample=args.sample
    )
    if not args.server:
        app = create_app(settings=settings, device=args.device)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
        return 0
    from sdk.client import StyleClient

    with StyleClient(args.server, token=args.token) as client:
        app = create_app(client, settings=settings)
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
