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


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=wire.arg_type(wire.parse_int, "--port", 0, 65535),
        default=8000,
        help="port to listen on (default: %(default)s)",
    )
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
        "--max-upload-mb",
        type=wire.arg_type(wire.parse_float, "--max-upload-mb", 0.001, 4096),
        default=20.0,
        help="largest upload accepted (default: %(default)s MB)",
    )
    parser.add_argument(
        "--max-side",
        type=wire.arg_type(wire.parse_int, "--max-side"),
        default=2048,
        help="longest side stylized; larger photos are scaled down (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer to this Host name (repeatable; '*' for any). Default: the --host "
        "address and the loopback names",
    )
    parser.add_argument(
        "--max-pending",
        type=wire.arg_type(wire.parse_int, "--max-pending", 1, 10_000),
        default=WebSettings.max_pending,
        help="stylize requests admitted at once; the next gets 503 (default: %(default)s)",
    )
    parser.add_argument(
        "--body-timeout",
        type=wire.arg_type(wire.parse_float, "--body-timeout", 0.1, 86_400),
        default=WebSettings.body_timeout,
        help="seconds an upload may take (default: %(default)s)",
    )
    parser.add_argument(
        "--header-timeout",
        type=wire.arg_type(wire.parse_float, "--header-timeout", 0.1, 3600),
        default=HeaderDeadlineProtocol.header_timeout,
        help="seconds a request's headers may take (default: %(default)s)",
    )
    parser.add_argument(
        "--max-connections",
        type=wire.arg_type(wire.parse_int, "--max-connections", 1, 100_000),
        default=MAX_CONNECTIONS,
        help="open connections at most; more get 503 (default: %(default)s)",
    )


def allowed_hosts(bound: str, extra: Sequence[str]) -> tuple[str, ...]:
    """The loopback names, the address the server is bound to (unless a wildcard), and ``extra``."""
    hosts = [*LOOPBACK_HOSTS, *extra]
    if bound not in WILDCARDS:
        hosts.append(bound)
    elif not extra:
        log.warning("listening on %s: only requests for the loopback names are answered; "
                    "add --allow-host NAME for each name clients use", bound)  # fmt: skip
    return tuple(dict.fromkeys(hosts))


def serve(app: Any, host: str, port: int, *, max_connections: int = 64, header_timeout: float = 10.0) -> None:
    """Run ``app`` with uvicorn, bounded: a header deadline, a connection limit, 5 s keep-alive."""
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
    limits = {"max_connections": args.max_connections, "header_timeout": args.header_timeout}
    if not args.server:
        from sdk.allocator import keep_freed_memory

        keep_freed_memory()  # a server process that stylizes: reuse freed activations (sdk.allocator)
        serve(create_app(settings=settings, device=args.device), args.host, args.port, **limits)
        return 0
    from sdk.client import StyleClient

    with StyleClient(args.server, token=args.token) as client:
        serve(create_app(client, settings=settings), args.host, args.port, **limits)
    return 0
