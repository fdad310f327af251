"""What keeps the web app safe to expose: checks on every request, headers on every answer.

:class:`Guard` is an ASGI middleware that sits around the app's routes:

- **Host allow-list**: a request whose ``Host`` is not in the list gets 400. A page on another
  site can make a browser resolve its own name to 127.0.0.1 (DNS rebinding); its requests
  then carry that foreign name as ``Host`` and are refused here.
- **Origin**: a request that changes something (any method but GET/HEAD/OPTIONS) with an
  ``Origin`` other than this server's own gets 403: another site's form or script cannot
  make a visitor's browser use this server. Clients that send no ``Origin`` (curl, the SDK)
  are not affected.
- **WebSocket handshakes** (the live camera) get both checks: a browser does not hold another
  site's page back from opening a WebSocket here (no CORS for WebSockets), so a handshake
  with a foreign ``Origin`` is refused with 403 (or closed with 1008 where the server cannot
  send an HTTP answer), as is one with a foreign ``Host``.
- **Headers**: ``X-Content-Type-Options: nosniff``, a Content-Security-Policy that fits the
  page (its own scripts and styles only, images also from ``blob:``/``data:``, no framing),
  ``Referrer-Policy: no-referrer``.
- **Errors nobody foresaw** become a JSON 500 with a generic message; the traceback goes to the
  log once. The exception stops here: uvicorn, seeing none, keeps the connection open for the
  next request (it closes a connection whose app raised after answering).
- **A client that goes away** mid-upload is logged in one line, not a traceback.

:class:`HeaderDeadlineProtocol` is uvicorn's h11 protocol with a deadline for a request's
headers, so a client that sends them a byte at a time (slowloris) is cut off; the body's
deadline is the app's (``WebSettings.body_timeout``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import h11
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from sdk.errors import (
    AuthenticationError,
    BusyError,
    ServerError,
    ServerUnavailableError,
    StylekitError,
    UploadTimeoutError,
)

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The page loads only its own files; the result and the previews are blob: URLs, the live camera
# a same-origin WebSocket (connect-src 'self' covers ws: to the same host in current browsers).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
    "script-src 'self'; style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc load their script from a CDN and start it inline.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src blob:; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
_HOST_REFUSED = (400, "invalid_host", "This server does not answer to that host name (see --allow-host).")
_ORIGIN_REFUSED = (403, "cross_origin", "Requests from another site's pages are refused.")
INTERNAL_ERROR = "Something went wrong on the server; the error has been logged."


def host_name(host_header: str) -> str:
    """``"Example.org:8000"`` -> ``"example.org"``, ``"[::1]:8000"`` -> ``"::1"``."""
    text = host_header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


class Guard:
    """ASGI middleware: host and origin checks, security headers, errors kept from the server."""

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str]) -> None:
        self.app = app
        hosts = {host_name(h) for h in allowed_hosts}
        self.any_host = "*" in hosts
        self.allowed_hosts = frozenset(hosts - {"*"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        path = str(scope.get("path", ""))
        csp = DOCS_CSP if path.startswith(DOCS_PATHS) else PAGE_CSP
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                extra = [
                    (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", csp.encode()),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if not self.any_host and host_name(host) not in self.allowed_hosts:
            await _json(send_with_headers, *_HOST_REFUSED)
            return
        origin = headers.get("origin")
        if scope["method"] not in _SAFE_METHODS and origin is not None and not _same_origin(origin, host):
            await _json(send_with_headers, *_ORIGIN_REFUSED)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except ClientDisconnect:
            log.info("%s %s: the client went away before its upload was complete", scope["method"], path)
        except Exception:
            log.exception("%s %s failed", scope["method"], path)
            if not started:
                await _json(send_with_headers, 500, "internal_error", INTERNAL_ERROR)


    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The host and origin rules of HTTP requests, on a WebSocket handshake (see the module doc)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host, origin = headers.get("host", ""), headers.get("origin")
        refusal = None
        if not self.any_host and host_name(host) not in self.allowed_hosts:
            refusal = _HOST_REFUSED
        elif origin is not None and not _same_origin(origin, host):
            refusal = _ORIGIN_REFUSED
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.info("refused a WebSocket handshake for %s: %s", scope.get("path", ""), refusal[1])
        await receive()  # websocket.connect
        if "websocket.http.response" in scope.get("extensions", {}):
            await _json(send, *refusal, prefix="websocket.")
        else:
            await send({"type": "websocket.close", "code": 1008})


def error_body(exc: StylekitError, *, remote: bool) -> tuple[int, dict[str, object], dict[str, str]]:
    """The status, JSON error body and headers for an SDK error (HTTP answers, video jobs, live).

    Errors of the style server are the server's fault, not the user's, unless it refused the
    request itself (4xx): unreachable -> 503, anything else on its side -> 502.
    """
    status = exc.http_status
    if isinstance(exc, ServerUnavailableError):
        status = 503
    elif isinstance(exc, AuthenticationError) or (remote and isinstance(exc, ServerError) and status >= 500):
        status = 502
    body = {**exc.to_dict(), "status": status}
    if status >= 500 and not isinstance(exc, (ServerError, BusyError)):
        # This server's own failure (a broken package, a missing GPU): its message can name
        # files here. The log has it; the client gets one generic sentence.
        body["message"] = INTERNAL_ERROR
    headers = {"Retry-After": "2"} if status == 503 else {}
    if isinstance(exc, UploadTimeoutError):
        headers["Connection"] = "close"  # the rest of the body may still be on its way
    return status, body, headers


def _same_origin(origin: str, host: str) -> bool:
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


async def _json(send: Send, status: int, code: str, message: str, prefix: str = "") -> None:
    """A JSON error answer; ``prefix="websocket."`` sends it as a WebSocket handshake's denial."""
    body = json.dumps({"error": code, "message": message, "status": status}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": f"{prefix}http.response.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}http.response.body", "body": body})


class HeaderDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take too long.

    The deadline starts when the connection opens and again after each answer; it is cleared
    once h11 has read a whole request line and headers. uvicorn's own keep-alive timeout does
    not cover this: any byte that arrives cancels it.
    """

    header_timeout: float = 10.0
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._headers_overdue)

    def _disarm(self) -> None:
        timer = self._header_deadline
        if timer is not None:
            timer.cancel()
            self._header_deadline = None

    def _headers_overdue(self) -> None:
        self._header_deadline = None
        # Their state leaves IDLE as soon as a request's headers are complete.
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.info("closing a connection whose request headers took over %g s", self.header_timeout)
            self.transport.close()


__all__ = [
    "DOCS_CSP",
    "INTERNAL_ERROR",
    "LOOPBACK_HOSTS",
    "PAGE_CSP",
    "Guard",
    "HeaderDeadlineProtocol",
    "error_body",
    "host_name",
]
