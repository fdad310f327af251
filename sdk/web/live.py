"""The live camera of the web demo: ``WebSocket /api/live``.

The page sends camera frames as binary messages (JPEG or PNG) and a style as a text message
``{"style": NAME}`` (also ``?style=NAME`` on the URL), the stroke size as ``{"scale": 2}``
(``?scale=2``; both in one message too); each is answered with the fields it set, as they now
are, and each frame with a text message ``{"frame", "style", "scale", "width", "height", "ms"}``
and then the stylized frame as a binary JPEG. One :class:`sdk.video.FrameStylizer` per
connection, temporal blend on, so the stream is steady; a style switch (or stroke size) takes
effect on the next frame. Problems are one text message ``{"error", "message", "status"}``;
the connection stays open after a bad frame or option and is closed after an oversized message
(1009), when the server is full (1013) or idle (1000).

Bounds: at most ``WebSettings.max_live`` connections; frames of at most ``live_max_bytes`` and
``live_max_side`` pixels on their longest side (``sdk.imaging``'s checks, with those limits);
frames beyond ``live_fps`` per second are dropped (answered ``{"dropped": "rate",
"retry_after_ms"}``, so a client sending one frame at a time knows when to send the next);
a connection with no message for ``live_idle_s`` is closed; a ``scale`` below 1 may not make
the network paint a frame of ``live_max_side`` past ``max_side`` (the photo route's bound).
Decoding, stylizing and encoding run in a worker thread, never on the event loop. Host and
origin are checked on the handshake by :class:`sdk.web.guard.Guard`.
"""

from __future__ import annotations

import json
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
from PIL import Image
from starlette.websockets import WebSocket, WebSocketDisconnect

from sdk import imaging, wire
from sdk.errors import BadOptionError, BusyError, ImageTooLargeError, StylekitError
from sdk.web.guard import error_body
from sdk.web.videos import VIDEO_NEEDS_LOCAL

if TYPE_CHECKING:
    from sdk.video import FrameStylizer
    from sdk.web.app import _State

log = logging.getLogger(__name__)

# Close codes (RFC 6455): normal, policy, too big, try again later.
NORMAL, POLICY, TOO_BIG, TRY_LATER = 1000, 1008, 1009, 1013
# A style message is small JSON; anything longer is not one.
_MAX_TEXT = 4096
_OPTIONS = frozenset({"style", "scale"})
_OPTIONS_SHAPE = 'JSON with a style, a stroke size or both: {"style": NAME, "scale": 2}'
_JPEG_QUALITY = 80


class _Close(Exception):
    def __init__(self, code: int, error: StylekitError | None = None) -> None:
        super().__init__(code)
        self.code, self.error = code, error


class LiveSession:
    """One connection: its stylizer, its style, its frame clock."""

    def __init__(self, state: _State, ws: WebSocket) -> None:
        self.state, self.ws = state, ws
        settings = state.settings
        env = state.limits
        self.limits = imaging.ImageLimits(
            max_bytes=settings.live_max_bytes,
            max_pixels=min(env.max_pixels, settings.live_max_side**2),
            max_side=min(env.max_side, settings.live_max_side),
        )
        self.interval = 1.0 / settings.live_fps
        self.stylizer: FrameStylizer | None = None
        self.style: wire.StyleChoice | None = None
        self.scale = 1.0
        self.frames = 0
        self.next_frame_at = 0.0

    async def serve(self) -> None:
        query = {k: v for k, v in self.ws.query_params.items() if k in _OPTIONS and v}
        if query:
            await self._guarded(self._set_options(query))
        while True:
            with anyio.move_on_after(self.state.settings.live_idle_s) as idle:
                message = await self.ws.receive()
            if idle.cancelled_caught:
                raise _Close(NORMAL)
            if message["type"] == "websocket.disconnect":
                return
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                await self._guarded(self._frame(data))
            elif text is not None:
                await self._guarded(self._text(text))

    async def _guarded(self, work: Any) -> None:
        """Run one message's work; a user's error is one message and the connection goes on."""
        try:
            await work
        except ImageTooLargeError as exc:
            raise _Close(TOO_BIG, exc) from None
        except StylekitError as exc:
            await send_error(self.ws, exc, remote=self.state.remote)

    async def _text(self, text: str) -> None:
        if len(text) > _MAX_TEXT:
            raise ImageTooLargeError(f"A text message may be at most {_MAX_TEXT} characters.")
        try:
            message = json.loads(text)
        except ValueError:
            raise BadOptionError(f"A text message is {_OPTIONS_SHAPE}.") from None
        if not isinstance(message, dict) or not message or not set(message) <= _OPTIONS:
            raise BadOptionError(f"A text message is {_OPTIONS_SHAPE}.")
        await self._set_options(message)

    async def _set_options(self, message: dict[str, Any]) -> None:
        """A style, a stroke size or both (checked before either changes); the answer has the
        fields the message set, as they now are."""
        scale = self._check_scale(message["scale"]) if "scale" in message else self.scale
        style = self.style
        if "style" in message:
            asked = wire.parse_style(message["style"])
            # Names resolved against the listing, as for photos: never a file.
            style = (await self.state.run(partial(self.state.resolve, asked), queue="light"))[0]
        if style is not None:
            await self.state.run(partial(self._switch, style, scale), queue="live")
        self.style, self.scale = style, scale
        answer: dict[str, Any] = {}
        if "style" in message and style is not None:
            answer["style"] = wire.encode_style(style)
        if "scale" in message:
            answer["scale"] = scale
        await self.ws.send_text(json.dumps(answer))

    def _check_scale(self, value: object) -> float:
        """wire's rule for ``scale``; below 1, a frame of ``live_max_side`` may not be painted past
        ``max_side`` (so a frame's work is bounded as a photo's is)."""
        scale = wire.parse_float("scale", value, wire.MIN_SCALE, wire.MAX_SCALE)
        settings = self.state.settings
        imaging.check_scale_side(settings.live_max_side, scale, settings.max_side, "a live frame")
        return scale

    def _switch(self, style: wire.StyleChoice, scale: float) -> None:
        # The model is loaded here, in a worker thread; the next frame is painted in it.
        if self.stylizer is None or self.stylizer.request.scale != scale:
            from sdk.video import FrameStylizer

            # A new stroke size is a new stylizer (the model stays loaded in the shared engine);
            # the temporal blend starts afresh, as on a style switch.
            self.stylizer = FrameStylizer(style, scale=scale, device=self.state.device)
        else:
            self.stylizer.style = style

    async def _frame(self, data: bytes) -> None:
        if len(data) > self.limits.max_bytes:
            raise ImageTooLargeError(f"A frame may be at most {self.limits.max_bytes // 1024} KB.")
        now = time.monotonic()
        if now < self.next_frame_at:
            wait_ms = max(1, round((self.next_frame_at - now) * 1000))
            await self.ws.send_text(json.dumps({"dropped": "rate", "retry_after_ms": wait_ms}))
            return
        self.next_frame_at = now + self.interval
        if self.stylizer is None or self.style is None:
            raise BadOptionError('Choose a style first: send {"style": NAME}.')
        started = time.perf_counter()
        jpeg, size = await self.state.run(partial(self._paint, self.stylizer, data), queue="live")
        self.frames += 1
        meta = {"frame": self.frames, "style": wire.encode_style(self.style), "scale": self.scale,
                "width": size[0], "height": size[1],
                "ms": round((time.perf_counter() - started) * 1000)}  # fmt: skip
        await self.ws.send_text(json.dumps(meta))
        await self.ws.send_bytes(jpeg)

    def _paint(self, stylizer: FrameStylizer, data: bytes) -> tuple[bytes, tuple[int, int]]:
        decoded = imaging.decode(data, self.limits)
        out = stylizer.process(decoded.rgb)
        jpeg = imaging.encode(Image.fromarray(out, "RGB"), "JPEG", _JPEG_QUALITY)
        return jpeg, (out.shape[1], out.shape[0])


async def send_error(ws: WebSocket, exc: StylekitError, *, remote: bool) -> None:
    """The JSON error body the HTTP routes answer with, as one text message."""
    _, body, _ = error_body(exc, remote=remote)
    await ws.send_text(json.dumps(body))


async def serve_live(state: _State, ws: WebSocket) -> None:
    """Accept one live connection and serve it until it closes."""
    await ws.accept()
    try:
        if state.remote:
            raise _Close(POLICY, BadOptionError(VIDEO_NEEDS_LOCAL))
        if state.live >= state.settings.max_live:
            raise _Close(TRY_LATER, BusyError("Too many live cameras are connected; try again in a moment."))
        from sdk import extras

        extras.require("video", "The live camera")
        state.live += 1
        try:
            await LiveSession(state, ws).serve()
        finally:
            state.live -= 1
        return
    except _Close as close:
        await _close(state, ws, close.code, close.error)
    except StylekitError as exc:
        await _close(state, ws, POLICY, exc)
    except WebSocketDisconnect:
        pass


async def _close(state: _State, ws: WebSocket, code: int, error: StylekitError | None) -> None:
    """Say why (one error message), then close with ``code``; a client already gone is let be."""
    try:
        if error is not None:
            await send_error(ws, error, remote=state.remote)
        await ws.close(code)
    except (WebSocketDisconnect, RuntimeError):
        log.info("live: the client went away before the connection was closed")


__all__ = ["LiveSession", "serve_live"]
