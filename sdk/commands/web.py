"""``stylekit web``: serve the demo page and its API with uvicorn."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sdk import wire
from sdk.errors import BadOptionError
from sdk.web.app import WebSettings, create_app
from sdk.web.guard import LOOPBACK_HOSTS, HeaderDeadlineProtocol

log = logging.getLogger(__name__)

WILDCARDS = frozenset({"0.0.0.0", "::", ""})
MAX_CONNECTIONS = 64


# Numeric options: flag, parser, (lowest, highest), default, help ("(default: ...)" is added).
_NUMBERS: tuple[tuple[str, Any, tuple[float, float], float, str], ...] = (
    ("--port", wire.parse_int, (0, 65535), 8000, "port to listen on"),
    ("--max-upload-mb", wire.parse_float, (0.001, 4096), 20.0, "largest upload accepted, in MB"),
    ("--max-side", wire.parse_int, (1, wire.MAX_SIDE), 2048, "longest side stylized (larger: scaled down)"),
    ("--max-pending", wire.parse_int, (1, 10_000), WebSettings.max_pending,
     "stylize requests admitted at once; the next gets 503"),
    ("--body-timeout", wire.parse_float, (0.1, 86_400), WebSettings.body_timeout,
     "seconds an upload may take"),
    ("--header-timeout", wire.parse_float, (0.1, 3600), HeaderDeadlineProtocol.header_timeout,
     "seconds a request's headers may take"),
    ("--max-connections", wire.parse_int, (1, 100_000), MAX_CONNECTIONS,
     "open connections at most; more get 503"),
)  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
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
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this Host name (repeatable; '*' for any). Default: the --host "
        "address and the loopback names",
    )
    for flag, parse, bounds, default, text in _NUMBERS:
        kind = wire.arg_type(parse, flag, *(int(b) if parse is wire.parse_int else b for b in bounds))
        parser.add_argument(flag, type=kind, default=default, help=f"{text} (default: %(default)s)")


def allowed_hosts(bound: str, extra: Sequence[str]) -> tuple[str, ...]:
    """The loopback names, the address the server is bound to (unless a wildcard), and ``extra``."""
    hosts = [*LOOPBACK_HOSTS, *extra]
    if bound not in WILDCARDS:
        hosts.append(bound)
    elif not extra:
        log.warning("listening on %s: only requests for the loopback names are answered; "
                    "add --allow-host NAME for each name clients use", bound)  # fmt: skip
    return tuple(dict.fromkeys(hosts))


def serve(app: Any, host: str, port: int, *, max_connections: int = 64, header_timeout: float = 10.0,
          ws_max_bytes: int = 2 * 2**20) -> None:  # fmt: skip
    """Run ``app`` with uvicorn, bounded: a header deadline, a connection limit, 5 s keep-alive,
    and WebSocket messages of at most ``ws_max_bytes`` (uvicorn buffers a whole message first)."""
    import uvicorn

    # A server's log carries its INFO events (a client that went away, busy refusals), as
    # uvicorn's access lines do; -v/-vv on the command line can still lower the level.
    sdk_log = logging.getLogger("sdk")
    sdk_log.setLevel(min(sdk_log.getEffectiveLevel(), logging.INFO))
    protocol = type("Protocol", (HeaderDeadlineProtocol,), {"header_timeout": header_timeout})
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        http=protocol,
        limit_concurrency=max_connections,
        timeout_keep_alive=5,
        h11_max_incomplete_event_size=16 * 1024,  # request line and headers
        ws_max_size=ws_max_bytes,
    )


def run(args: argparse.Namespace) -> int:
    if args.server and args.device != "auto":
        raise BadOptionError("--device applies to the local engine; with --server the server picks its own.")
    if args.sample is not None and not args.sample.is_file():
        raise BadOptionError(f"--sample: {args.sample} is not a file.")
    settings = WebSettings(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_side=args.max_side,
        max_pending=args.max_pending,
        body_timeout=args.body_timeout,
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
        sample=args.sample,
    )
    limits = {"max_connections": args.max_connections, "header_timeout": args.header_timeout,
              # Twice the live frame limit: a frame a little too big still gets the app's own
              # one-line refusal; a far bigger one is cut off by uvicorn before it is buffered.
              "ws_max_bytes": 2 * settings.live_max_bytes}  # fmt: skip
    if not args.server:
        from sdk.allocator import keep_freed_memory

        keep_freed_memory()  # a server process that stylizes: reuse freed activations (sdk.allocator)
        serve(create_app(settings=settings, device=args.device), args.host, args.port, **limits)
        return 0
    from sdk.client import StyleClient

    with StyleClient(args.server, token=args.token) as client:
        serve(create_app(client, settings=settings), args.host, args.port, **limits)
    return 0
