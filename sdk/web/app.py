"""The web demo's ASGI app: a small typed JSON API and the page that uses it.

``create_app()`` runs styles on the local engine; ``create_app(StyleClient(url))`` sends them to
a TorchServe backend. The routes (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``GET /api/styles``: every style with its kind, description, aliases, license, blend group
  and thumbnail URL;
- ``GET /api/styles/{name}/thumbnail``: the style rendered by itself on the sample picture
  (kept in memory after the first request); the arbitrary kind shows an "any painting" icon;
- ``POST /api/stylize``: multipart upload in, image bytes out;
- ``GET /api/info``: the limits the page checks before uploading;
- ``GET /healthz``: liveness, and whether the backend answers.

Uploads are read into memory (never into a temp file), counted while they stream in, and
refused with 413 as soon as they pass the limit. Images are decoded by ``sdk.imaging`` and
stylized by the backend in a worker thread, never on the event loop. The app writes no files.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path, PurePath
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from sdk import api, imaging
from sdk.api import Backend, parse_flag, parse_number, parse_style
from sdk.errors import (
    AuthenticationError,
    BadOptionError,
    ImageTooLargeError,
    InvalidImageError,
    ServerError,
    ServerUnavailableError,
    StylekitError,
    UnknownStyleError,
)
from sdk.web.sample import landscape

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Gallery cards show thumbnails at about 100 CSS pixels; 160 keeps them sharp at 1.5x.
THUMBNAIL_SIDE = 160
FORMATS: dict[str, str] = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG"}
EXTENSIONS: dict[str, str] = {"PNG": "png", "JPEG": "jpg"}
# Multipart framing (boundaries, part headers, the small text fields) on top of the files.
_FORM_OVERHEAD = 64 * 1024

T = TypeVar("T")


class UnsupportedMediaTypeError(InvalidImageError):
    """The upload declares a content type that is not an image (HTTP 415)."""

    http_status = 415
    code = "unsupported_media_type"


@runtime_checkable
class ListsStyles(Protocol):
    """A backend that can say which styles it serves (``sdk.client.StyleClient`` does)."""

    def styles(self) -> Any: ...


@runtime_checkable
class SendsBytes(Protocol):
    """A backend that returns the encoded image as the server sent it (``StyleClient`` does)."""

    def stylize_bytes(
        self,
        image: bytes,
        style: str | dict[str, float],
        *,
        style_image: bytes | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        format: str = "PNG",
    ) -> bytes: ...


@dataclass(frozen=True)
class WebSettings:
    """Limits and choices of one app instance."""

    # Largest upload accepted (photo and style image together), in bytes.
    max_upload_bytes: int = 20 * 2**20
    # Longest side the app stylizes; larger photos are scaled down first (never up).
    max_side: int = 2048
    # Stylize jobs run at once; more wait their turn (the model already uses every core).
    concurrency: int = 1
    # Photo the thumbnails are rendered on; None = the drawn landscape of ``sdk.web.sample``.
    sample: Path | None = None


# ---------------------------------------------------------------------------------------------
# API models


StyleKind = Literal["feedforward", "multistyle", "arbitrary", "unknown"]
# A style server may serve archives that were not made by stylekit: their kind is "unknown".
_KINDS: dict[str, StyleKind] = {
    "feedforward": "feedforward",
    "multistyle": "multistyle",
    "arbitrary": "arbitrary",
}


class StyleOut(BaseModel):
    name: str = Field(description="name to pass as `style`")
    kind: StyleKind
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    license: str | None = None
    blend_group: str | None = Field(
        default=None, description="styles with the same group can be blended (`a=0.7,b=0.3`)"
    )
    thumbnail_url: str = Field(description="changes when the style's model file does, so caches stay right")


class ErrorOut(BaseModel):
    error: str = Field(description="machine-readable code, e.g. `invalid_image`")
    message: str = Field(description="one sentence for a person")
    status: int


class InfoOut(BaseModel):
    backend: Literal["local", "server"]
    max_upload_bytes: int
    max_side: int
    formats: list[str]


class HealthOut(BaseModel):
    status: Literal["ok"]
    backend: Literal["local", "server"]


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "bad option or not a decodable image"},
    404: {"model": ErrorOut, "description": "unknown style"},
    413: {"model": ErrorOut, "description": "upload or image too large"},
    415: {"model": ErrorOut, "description": "not multipart/form-data, or a file that is not an image"},
    502: {"model": ErrorOut, "description": "the style server answered with an error"},
    503: {"model": ErrorOut, "description": "the style server cannot be reached"},
}

_STYLIZE_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "the photo"},
                    "style": {
                        "type": "string",
                        "description": "a style name, or a blend of sub-styles of one network: "
                        "`a=0.7,b=0.3`. Optional with `style_image` (defaults to `arbitrary`).",
                    },
                    "style_image": {
                        "type": "string",
                        "format": "binary",
                        "description": "a painting whose style to copy (arbitrary kind)",
                    },
                    "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 1},
                    "preserve_color": {"type": "boolean", "default": False},
                    "format": {"type": "string", "enum": ["png", "jpeg"], "default": "png"},
                    "max_side": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "scale the photo down so its longest side is at most this "
                        "(capped by the server's own limit)",
                    },
                },
            }
        }
    },
}


# ---------------------------------------------------------------------------------------------
# Helpers


def error_response(exc: StylekitError, *, remote: bool) -> JSONResponse:
    """The JSON error body and status for an SDK error.

    Errors of the style server are the server's fault, not the user's, unless it refused the
    request itself (4xx): unreachable -> 503, anything else on its side -> 502.
    """
    status = exc.http_status
    if isinstance(exc, ServerUnavailableError):
        status = 503
    elif isinstance(exc, AuthenticationError) or (remote and isinstance(exc, ServerError) and status >= 500):
        status = 502
    body = {**exc.to_dict(), "status": status}
    return JSONResponse(body, status_code=status)


def _slug(text: str, fallback: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-")
    return slug or fallback


def download_name(photo_name: str | None, style: str | Mapping[str, float], painting_name: str | None,
                  fmt: str) -> str:
    """``photo-starry-night.png``: the photo's stem, then the style (or painting), then the format."""
    stem = _slug(PurePath(photo_name or "").stem, "image")
    if painting_name:
        label = _slug(PurePath(painting_name).stem, "painting")
    elif isinstance(style, str):
        label = _slug(style, "styled")
    else:
        label = _slug("-".join(style), "blend")
    return f"{stem}-{label}.{EXTENSIONS[fmt]}"


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


async def read_form(request: Request, limit: int) -> FormData:
    """Parse a multipart body kept in memory, refusing it (413) once it passes ``limit`` bytes."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaTypeError(
            f"Send the upload as multipart/form-data (got {content_type or 'no content type'})."
        )
    too_large = ImageTooLargeError(f"The upload is larger than this server accepts ({_megabytes(limit)}).")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise too_large

    async def counted() -> AsyncGenerator[bytes, None]:
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limit + _FORM_OVERHEAD:
                raise too_large
            yield chunk

    parser = MultiPartParser(request.headers, counted(), max_files=2, max_fields=16)
    # Above this size Starlette moves a file into a disk temp file; the body can never get there.
    parser.spool_max_size = limit + _FORM_OVERHEAD + 1
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise BadOptionError(f"The upload is not a valid form: {exc.message}") from exc


async def _file_bytes(form: FormData, field: str, limit: int, *, required: bool) -> tuple[bytes, str] | None:
    """The bytes and file name of an uploaded file field, after its declared type is checked."""
    item = form.get(field)
    if item is None or (isinstance(item, str) and not item):
        if required:
            raise BadOptionError(f"Add a photo: the form field {field!r} is missing.")
        return None
    if not isinstance(item, UploadFile):
        raise BadOptionError(f"The form field {field!r} must be a file upload.")
    name = item.filename or field
    declared = (item.content_type or "").split(";")[0].strip().lower()
    # Browsers send application/octet-stream when they don't know; decoding decides then.
    if declared and not declared.startswith("image/") and declared != "application/octet-stream":
        raise UnsupportedMediaTypeError(
            f"{name!r} is {declared}, not an image. Choose a photo (JPEG, PNG, WebP, ...)."
        )
    data = await item.read()
    if not data:
        raise InvalidImageError(f"{name!r} is empty.")
    if len(data) > limit:
        raise ImageTooLargeError(f"{name!r} is larger than this server accepts ({_megabytes(limit)}).")
    return data, name


def _form_text(form: FormData, field: str) -> str | None:
    item = form.get(field)
    if item is None:
        return None
    if not isinstance(item, str):
        raise BadOptionError(f"The form field {field!r} must be text, not a file.")
    return item


# ---------------------------------------------------------------------------------------------
# The app


class _State:
    """What one app instance holds between requests."""

    def __init__(self, backend: Backend | SendsBytes | None, settings: WebSettings, device: str) -> None:
        self.settings = settings
        self.remote = backend is not None
        self.device = device
        self.backend = backend
        # The environment's pixel and side limits (STYLEKIT_MAX_PIXELS, ...), this app's byte limit.
        self.limits = replace(imaging.ImageLimits.from_env(), max_bytes=settings.max_upload_bytes)
        # (name, the style's revision when it was painted) -> (image, media type).
        self.thumbnails: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._thumbnail_locks: dict[str, anyio.Lock] = {}
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._sample: bytes | None = None

    def stylize(self, photo: bytes, style: str | dict[str, float], painting: bytes | None = None, *,
                strength: float = 1.0, preserve_color: bool = False, max_side: int | None = None,
                fmt: str = "PNG") -> bytes:
        """Uploaded bytes in, encoded image out; blocking (call it through :meth:`run`).

        Locally the photo is decoded here (with this app's limits) and the shared engine
        paints it. A style server gets the upload's bytes as they came and, where the client
        can (``stylize_bytes``), answers in the requested format, so nothing is re-encoded.
        """
        # Checked here too so a style server is not asked to do what would fail anyway.
        strength = imaging.check_strength(strength)
        if self.backend is None:
            decoded = imaging.decode(photo, self.limits)
            image = api.engine(self.device).stylize(
                decoded, style, style_image=painting, strength=strength,
                preserve_color=preserve_color, max_side=max_side,
            )  # fmt: skip
            return imaging.encode(image, fmt)
        if isinstance(self.backend, SendsBytes):
            return self.backend.stylize_bytes(
                photo, style, style_image=painting, strength=strength,
                preserve_color=preserve_color, max_side=max_side, format=fmt,
            )  # fmt: skip
        assert isinstance(self.backend, Backend)
        image = self.backend.stylize(
            photo, style, style_image=painting, strength=strength,
            preserve_color=preserve_color, max_side=max_side,
        )  # fmt: skip
        return imaging.encode(image, fmt)

    async def run(self, fn: partial[T], *, queue: Literal["stylize", "thumbnail", "light"]) -> T:
        """Run blocking work in a worker thread, never on the event loop.

        Each queue has its own limit. ``stylize`` (a person waiting for a result) runs
        ``concurrency`` jobs at a time; ``thumbnail`` one at a time beside it, so a gallery
        being filled never holds up a result; ``light`` work (listing styles, the server's
        health) uses anyio's default pool and never waits behind a photo.
        """
        if queue == "light":
            return await anyio.to_thread.run_sync(fn)
        limiter = self._limiters.get(queue)
        if limiter is None:
            size = self.settings.concurrency if queue == "stylize" else 1
            limiter = self._limiters[queue] = anyio.CapacityLimiter(size)
        return await anyio.to_thread.run_sync(fn, limiter=limiter)

    def thumbnail_lock(self, name: str) -> anyio.Lock:
        return self._thumbnail_locks.setdefault(name, anyio.Lock())

    def sample(self) -> bytes:
        """The sample picture as PNG bytes, at most ``THUMBNAIL_SIDE`` on its longest side."""
        if self._sample is None:
            src = self.settings.sample
            picture = imaging.decode(src if src is not None else landscape(THUMBNAIL_SIDE), self.limits)
            small = imaging.resize_max_side(picture, THUMBNAIL_SIDE)
            self._sample = imaging.encode(imaging.finish(small.rgb, small), "PNG")
        return self._sample

    def thumbnail(self, name: str) -> bytes:
        return self.stylize(self.sample(), name, fmt="JPEG")

    def styles(self) -> list[StyleOut]:
        if self.remote and isinstance(self.backend, ListsStyles):
            items: Iterable[Any] = self.backend.styles()
        else:
            items = api.list_styles()
        return [_style_out(item) for item in items]


def _style_out(item: Any) -> StyleOut:
    """A style as ``sdk.api.StyleInfo`` or the style server describes it (object or mapping)."""

    def get(key: str) -> Any:
        return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)

    name, kind = str(get("name")), _KINDS.get(str(get("kind")), "unknown")
    revision = str(get("revision") or "")
    source = get("source")
    source = source if isinstance(source, Mapping) else {}
    return StyleOut(
        name=name,
        kind=kind,
        description=str(get("description") or ""),
        aliases=list(get("aliases") or ()),
        license=get("license") or source.get("license") or None,
        # Sub-styles of one network blend; a server names the network by its model (archive).
        blend_group=(get("package") or get("model")) if kind == "multistyle" else None,
        thumbnail_url=f"/api/styles/{name}/thumbnail" + (f"?v={revision}" if revision else ""),
    )


def create_app(backend: Backend | SendsBytes | None = None, *, settings: WebSettings | None = None,
               device: str = "auto") -> FastAPI:
    """The web demo app. ``backend=None`` stylizes with the local engine on ``device``."""
    state = _State(backend, settings or WebSettings(), device)

    app = FastAPI(
        title="stylekit web demo",
        version="1.0",
        description="Upload a photo, pick a style, get the painting back.",
    )

    @app.exception_handler(StylekitError)
    async def _on_stylekit_error(request: Request, exc: StylekitError) -> JSONResponse:
        if exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc, remote=state.remote)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", response_model=HealthOut, responses={503: {"model": ErrorOut}})
    async def healthz() -> HealthOut:
        """Alive; with a style server, also that the server answers."""
        health = getattr(state.backend, "health", None)
        if health is not None and callable(health):
            await state.run(partial(health), queue="light")
        return HealthOut(status="ok", backend="server" if state.remote else "local")

    @app.get("/api/info", response_model=InfoOut)
    async def info() -> InfoOut:
        """The limits the page checks before it uploads."""
        return InfoOut(
            backend="server" if state.remote else "local",
            max_upload_bytes=state.settings.max_upload_bytes,
            max_side=state.settings.max_side,
            formats=["png", "jpeg"],
        )

    @app.get("/api/styles", response_model=list[StyleOut], responses=_ERRORS)
    async def styles() -> list[StyleOut]:
        """Every style the backend can run."""
        return await state.run(partial(state.styles), queue="light")

    @app.get(
        "/api/styles/{name}/thumbnail",
        responses={**_ERRORS, 200: {"content": {"image/jpeg": {}, "image/svg+xml": {}}}},
        response_class=Response,
    )
    async def thumbnail(name: str, v: str = "") -> Response:
        """The style painted on the sample picture by the style itself (an icon for `arbitrary`).

        `v` is the revision in the listed `thumbnail_url`: a style rewritten under the same
        name (retrained) gets a new URL, so neither this app nor a browser shows the old one.
        """
        headers = {"Cache-Control": "public, max-age=3600"}
        async with state.thumbnail_lock(name):
            # Locally, listing is cheap and always current: a removed style is a 404 and a
            # rewritten one is painted afresh. A style server is asked only on a miss.
            if not (state.remote and (name, v) in state.thumbnails):
                found = {s.name: s for s in await state.run(partial(state.styles), queue="light")}
                if name not in found:
                    close = difflib.get_close_matches(name, found, n=3)
                    hint = f" Did you mean {', '.join(close)}?" if close else ""
                    raise UnknownStyleError(f"No style named {name!r}.{hint}")
                style, v = found[name], found[name].thumbnail_url.partition("?v=")[2]
                if (name, v) not in state.thumbnails:
                    if style.kind == "arbitrary":
                        painted = ((STATIC_DIR / "any-painting.svg").read_bytes(), "image/svg+xml")
                    else:
                        jpeg = await state.run(partial(state.thumbnail, name), queue="thumbnail")
                        painted = (jpeg, imaging.MIME["JPEG"])
                    # One entry per name: an older revision's thumbnail is not kept.
                    state.thumbnails = {k: t for k, t in state.thumbnails.items() if k[0] != name}
                    state.thumbnails[name, v] = painted
        data, media_type = state.thumbnails[name, v]
        return Response(data, media_type=media_type, headers=headers)

    @app.post(
        "/api/stylize",
        response_class=Response,
        openapi_extra={"requestBody": _STYLIZE_BODY},
        responses={
            **_ERRORS,
            200: {
                "content": {"image/png": {}, "image/jpeg": {}},
                "description": "the stylized image, same aspect ratio as the photo",
            },
        },
    )
    async def stylize(request: Request) -> Response:
        """Stylize an uploaded photo with a style, a blend, or the style of an uploaded painting."""
        limit = state.settings.max_upload_bytes
        form = await read_form(request, limit)
        photo = await _file_bytes(form, "image", limit, required=True)
        assert photo is not None
        painting = await _file_bytes(form, "style_image", limit, required=False)
        if painting and len(photo[0]) + len(painting[0]) > limit:
            raise ImageTooLargeError(f"The upload is larger than this server accepts ({_megabytes(limit)}).")

        style_text = (_form_text(form, "style") or "").strip()
        if not style_text:
            if painting is None:
                raise BadOptionError("Choose a style (or upload a painting to copy its style).")
            style_text = "arbitrary"
        style = parse_style(style_text)
        strength = float(parse_number("strength", _form_text(form, "strength") or "1"))
        preserve = parse_flag("preserve_color", _form_text(form, "preserve_color") or "false")
        fmt_text = (_form_text(form, "format") or "png").strip().lower()
        if fmt_text not in FORMATS:
            raise BadOptionError(f"format must be png or jpeg, not {fmt_text!r}.")
        fmt = FORMATS[fmt_text]
        max_side = state.settings.max_side
        requested = _form_text(form, "max_side")
        if requested:
            asked = int(parse_number("max_side", requested, int))
            if asked < 1:
                raise BadOptionError(f"max_side must be at least 1, not {asked}.")
            max_side = min(asked, max_side)

        job = partial(
            state.stylize,
            photo[0],
            style,
            painting[0] if painting else None,
            strength=strength,
            preserve_color=preserve,
            max_side=max_side,
            fmt=fmt,
        )
        data = await state.run(job, queue="stylize")
        filename = download_name(photo[1], style, painting[1] if painting else None, fmt)
        return Response(
            data,
            media_type=imaging.MIME[fmt],
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
            },
        )

    return app
