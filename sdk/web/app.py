"""The web demo's ASGI app: a small typed JSON API and the page that uses it.

``create_app()`` runs styles on the local engine; ``create_app(StyleClient(url))`` sends them to
a TorchServe backend. The routes (OpenAPI at ``/docs`` and ``/openapi.json``):

- ``GET /api/styles``: every style with its kind, description, aliases, license, blend group
  and thumbnail URL;
- ``GET /api/styles/{name}/thumbnail``: the style rendered by itself on the sample picture
  (kept in memory after the first request); the arbitrary kind shows an "any painting" icon;
- ``POST /api/stylize``: multipart upload in (the photo, options, and optionally a painting
  and a mask), image bytes out;
- ``POST /api/videos``: a clip and the same options (plus ``temporal``) in, 202 ``{id}`` out;
  ``GET /api/videos/{id}`` its progress, ``GET /api/videos/{id}/result`` the MP4
  (:mod:`sdk.web.videos`; local engine only);
- ``WebSocket /api/live``: camera frames in, stylized frames out (:mod:`sdk.web.live`; local
  engine only);
- ``GET /api/info``: the limits the page checks before uploading;
- ``GET /healthz``: liveness, and whether the backend answers.

Uploads are read into memory, counted while they stream in, and refused with 413 as soon as
they pass the limit, or with 408 when they take longer than ``body_timeout``. At most
``max_pending`` stylize requests are admitted at once (reading, waiting or running); the next
gets 503 with ``Retry-After`` before its body is read, so a flood of uploads cannot grow the
process (video jobs likewise, ``max_video_jobs``). Images are decoded by ``sdk.imaging`` and
stylized by the backend in a worker thread, never on the event loop. Photos never touch the
disk; the only files the app writes are a video job's clip and result, in a private temp
folder (mode 0700), deleted when the job ends (the clip) and on download, expiry or shutdown
(the result).

Options are read by ``sdk.wire``, as the TorchServe handler reads them. A style is a name or
alias the backend lists, or a blend of them; it is resolved against that list here, so no
request can name a file, and an unknown name gets the same 404 whatever exists on disk.
Every error, 404 and 405 included, is a JSON body ``{error, message, status}``; host,
origin, security headers and unforeseen errors are :mod:`sdk.web.guard`'s.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path, PurePath
from typing import Any, Literal, Protocol, TypeVar, cast, get_args
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from sdk import api, extras, imaging, wire
from sdk.errors import (
    BadOptionError,
    BusyError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidMaskError,
    InvalidVideoError,
    StylekitError,
    UnknownStyleError,
    UnsupportedMediaTypeError,
    UploadTimeoutError,
)
from sdk.formats import SUFFIX
from sdk.info import StyleInfo
from sdk.registry import default_registry
from sdk.web.guard import LOOPBACK_HOSTS, Guard, error_body
from sdk.web.live import serve_live
from sdk.web.sample import landscape
from sdk.web.videos import VIDEO_NEEDS_LOCAL, Job, VideoJobs

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Gallery cards show thumbnails at about 100 CSS pixels; 160 keeps them sharp at 1.5x.
THUMBNAIL_SIDE = 160
# Multipart framing (boundaries, part headers, the small text fields) on top of the files.
_FORM_OVERHEAD = 64 * 1024

T = TypeVar("T")


class StyleServer(Protocol):
    """What the app needs of a style server's client (``sdk.client.StyleClient`` is one): its
    styles, and a request sent as it came, answered in the requested format (no re-encoding)."""

    def styles(self, refresh: bool = True) -> list[StyleInfo]: ...

    def send(self, image: bytes, request: wire.StyleRequest) -> bytes: ...


@dataclass(frozen=True)
class WebSettings:
    """Limits and choices of one app instance."""

    # Largest upload accepted (photo, style image and mask together), in bytes.
    max_upload_bytes: int = 20 * 2**20
    # Longest side the app stylizes; larger photos are scaled down first (never up). Also the
    # longest side the network may paint at: a ``scale`` below 1 that would go past it is refused.
    max_side: int = 2048
    # Stylize jobs run at once; more wait their turn (the model already uses every core).
    concurrency: int = 1
    # Stylize requests admitted at once, reading their upload, waiting or running; the next
    # gets 503 with Retry-After. Memory is bounded by about this many uploads.
    max_pending: int = 8
    # Seconds an upload may take from the first byte of its body to the last (408 after).
    body_timeout: float = 120.0
    # Host names this app answers to (the Host header; "*": any). The CLI adds the bound host.
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS
    # Photo the thumbnails are rendered on; None = the drawn landscape of ``sdk.web.sample``.
    sample: Path | None = None
    # Video clips (POST /api/videos): the largest upload, the most frames a clip may have (the
    # job stops with 413 at the first frame past it), jobs that may exist at once (queued,
    # running, or finished and not yet fetched; the next gets 503), seconds a result is kept.
    max_video_bytes: int = 50 * 2**20
    max_video_frames: int = 900
    max_video_jobs: int = 4
    video_ttl: float = 600.0
    # Live camera (WebSocket /api/live): connections at once, frames per second per connection
    # (more are dropped), the largest frame in bytes and on its longest side, idle seconds.
    max_live: int = 2
    live_fps: float = 15.0
    live_max_bytes: int = 512 * 1024
    live_max_side: int = 640
    live_idle_s: float = 30.0

    def __post_init__(self) -> None:
        whole = ("max_upload_bytes", "max_side", "concurrency", "max_pending", "max_video_bytes",
                 "max_video_frames", "max_video_jobs", "max_live", "live_max_bytes",
                 "live_max_side")  # fmt: skip
        for name in whole:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BadOptionError(f"WebSettings.{name} must be a positive integer, not {value!r}.")
        for name in ("body_timeout", "video_ttl", "live_fps", "live_idle_s"):
            if not getattr(self, name) > 0:
                raise BadOptionError(f"WebSettings.{name} must be positive, not {getattr(self, name)!r}.")


# ---------------------------------------------------------------------------------------------
# API models


# A style server may serve archives that were not made by stylekit: their kind is "unknown".
StyleKind = Literal["feedforward", "multistyle", "arbitrary", "unknown"]


class StyleOut(BaseModel):
    """``sdk.info.StyleInfo`` as the page gets it: every field but ``origin`` (which can name a
    file on the server), plus where to find the style's thumbnail."""

    name: str = Field(description="name to pass as `style`")
    kind: StyleKind
    description: str = ""
    aliases: list[str] = Field(default_factory=list)
    source: str = ""
    license: str | None = None
    package: str | None = Field(default=None, description="the package or model the style comes from")
    index: int | None = None
    revision: str = ""
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
    video: bool = Field(description="whether /api/videos and /api/live work here (local engine, video extra)")
    max_video_bytes: int
    max_video_frames: int
    live_fps: float
    live_max_side: int
    live_max_bytes: int


class VideoJobOut(BaseModel):
    id: str = Field(description="the job's random id")


class VideoStatusOut(BaseModel):
    state: Literal["queued", "running", "done", "failed"]
    frames_done: int
    frames_total: int | None = Field(description="None while the clip's length is not known")
    fps: float = Field(description="frames stylized per second")
    eta_s: float | None = Field(description="seconds left, when known")
    error: ErrorOut | None = Field(description="why a failed job failed")


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
                    "format": {"type": "string", "enum": ["png", "jpeg", "jpg", "webp"], "default": "png"},
                    "max_side": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": wire.MAX_SIDE,
                        "description": "scale the photo down so its longest side is at most this "
                        "(capped by the server's own limit)",
                    },
                    "scale": {
                        "type": "number",
                        "minimum": wire.MIN_SCALE,
                        "maximum": wire.MAX_SCALE,
                        "default": 1,
                        "description": "stroke size: the network paints the photo at its size divided "
                        "by this, and the result comes back at the photo's size; below 1 the painting "
                        "side may not pass the server's longest side",
                    },
                    "mask": {
                        "type": "string",
                        "format": "binary",
                        "description": "where the style goes: an image of any mode and size with the "
                        "photo's aspect ratio (within 2%); white takes the style, black or transparent "
                        "keeps the photo (or takes `outside`), grey blends",
                    },
                    "outside": {
                        "type": "string",
                        "description": "a style name or blend for where the mask is black, instead of "
                        "the photo; needs `mask`",
                    },
                },
            }
        }
    },
}


# ---------------------------------------------------------------------------------------------
# Helpers


def error_response(exc: StylekitError, *, remote: bool) -> JSONResponse:
    """The JSON error answer for an SDK error (:func:`error_body`)."""
    status, body, headers = error_body(exc, remote=remote)
    return JSONResponse(body, status_code=status, headers=headers)


def _slug(text: str, fallback: str) -> str:
    # Letters and digits of any script stay (a photo named 夕焼け keeps its name).
    slug = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFC", text).lower()).strip("-")[:40].strip("-")
    return slug or fallback


def content_disposition(photo_name: str | None, style: str | Mapping[str, float], painting_name: str | None,
                        fmt: str) -> str:
    """``attachment`` with the download name in UTF-8 (``filename*``, RFC 6266) and folded to
    ASCII (``filename``) for clients that do not read the first."""
    name = download_name(photo_name, style, painting_name, fmt)
    fallback = download_name(_ascii(photo_name), style, _ascii(painting_name), fmt)
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _ascii(name: str | None) -> str | None:
    """A file name with its stem folded to ASCII; "_" where nothing is left (the slug's fallback then)."""
    if name is None:
        return None
    path = PurePath(name)
    stem = unicodedata.normalize("NFKD", path.stem).encode("ascii", "ignore").decode()
    return f"{stem or '_'}{path.suffix}"


def download_name(photo_name: str | None, style: str | Mapping[str, float], painting_name: str | None,
                  fmt: str) -> str:
    """``photo-starry-night.png``: the photo's stem, then the style (or painting), then the format
    (an image format, or ``MP4`` for a video)."""
    stem = _slug(PurePath(photo_name or "").stem, "image")
    if painting_name:
        label = _slug(PurePath(painting_name).stem, "painting")
    elif isinstance(style, str):
        label = _slug(style, "styled")
    else:
        label = _slug("-".join(style), "blend")
    return f"{stem}-{label}{SUFFIX.get(fmt, '.' + fmt.lower())}"


def _megabytes(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"


async def read_form(request: Request, limit: int, timeout: float) -> FormData:
    """Parse a multipart body kept in memory: 413 once it passes ``limit`` bytes, 408 after ``timeout`` s."""
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

    parser = MultiPartParser(request.headers, counted(), max_files=len(PHOTO_FILES), max_fields=16)
    # Above this size Starlette moves a file into a disk temp file; the body can never get there.
    parser.spool_max_size = limit + _FORM_OVERHEAD + 1
    try:
        with anyio.fail_after(timeout):
            return await parser.parse()
    except MultiPartException as exc:
        raise BadOptionError(f"The upload is not a valid form: {exc.message}") from exc
    except TimeoutError:
        raise UploadTimeoutError(f"The upload did not arrive within {timeout:g} s.") from None


# The file fields of the photo and the video routes: the picture, then wire's image parts.
PHOTO_FILES, VIDEO_FILES = ("image", *wire.IMAGE_PARTS), ("video", *wire.IMAGE_PARTS)
# What each file field holds, for messages, and the error an empty one raises.
_FILE_WHAT = {"image": "a photo", "style_image": "a painting", "mask": "a mask", "video": "a video clip"}


async def _file_bytes(form: FormData, field: str, limit: int, *, required: bool,
                      media: Literal["image", "video"] = "image") -> tuple[bytes, str] | None:  # fmt: skip
    """The bytes and file name of an uploaded file field, after its declared type is checked."""
    item = form.get(field)
    what = _FILE_WHAT.get(field, "a photo" if media == "image" else "a video clip")
    if item is None or (isinstance(item, str) and not item):
        if required:
            raise BadOptionError(f"Add {what}: the form field {field!r} is missing.")
        return None
    if not isinstance(item, UploadFile):
        raise BadOptionError(f"The form field {field!r} must be a file upload.")
    if len(form.getlist(field)) > 1:
        raise BadOptionError(f"The form field {field!r} is given twice.")
    name = item.filename or field
    declared = (item.content_type or "").split(";")[0].strip().lower()
    # Browsers send application/octet-stream when they don't know; decoding decides then.
    if declared and not declared.startswith(f"{media}/") and declared != "application/octet-stream":
        example = "JPEG, PNG, WebP" if media == "image" else "MP4, MOV, WebM"
        kind = "an image" if media == "image" else "a video"
        raise UnsupportedMediaTypeError(f"{name!r} is {declared}, not {kind}. Choose {what} ({example}...).")
    data = await item.read()
    if not data:
        error = {"mask": InvalidMaskError, "video": InvalidVideoError}.get(field, InvalidImageError)
        raise error(f"{name!r} is empty." if field != "mask" else f"The mask {name!r} is empty.")
    if len(data) > limit:
        raise ImageTooLargeError(f"{name!r} is larger than this server accepts ({_megabytes(limit)}).")
    return data, name


def _form_request(form: FormData, style_image: bytes | None, files: tuple[str, ...] = PHOTO_FILES,
                  extra: tuple[str, ...] = (), mask: bytes | None = None,
                  ) -> tuple[wire.StyleRequest, dict[str, str]]:  # fmt: skip
    """The form's text fields, read by the one options parser (``sdk.wire``). ``files`` are the
    route's file fields (read by ``_file_bytes``); the ``extra`` fields a route reads itself (a
    video's ``temporal``) come back beside the request."""
    fields: dict[str, str] = {}
    for key, item in form.multi_items():
        if key in files:
            continue
        if not isinstance(item, str):
            raise BadOptionError(f"The form field {wire.shown(key)} must be text, not a file.")
        if key in fields:
            raise BadOptionError(f"The form field {wire.shown(key)} is given twice.")
        fields[key] = item
    rest = {key: fields.pop(key) for key in extra if key in fields}
    return wire.parse_options(fields, style_image=style_image, mask=mask), rest


def _within(limit: int, *parts: tuple[bytes, str] | None) -> None:
    """The files of one upload together are at most ``limit`` bytes (each was checked alone)."""
    if sum(len(part[0]) for part in parts if part) > limit:
        raise ImageTooLargeError(f"The upload is larger than this server accepts ({_megabytes(limit)}).")


# ---------------------------------------------------------------------------------------------
# The app


class _State:
    """What one app instance holds between requests."""

    def __init__(self, backend: StyleServer | None, settings: WebSettings, device: str) -> None:
        self.settings = settings
        self.remote = backend is not None
        self.device = device
        self.backend = backend
        # The environment's pixel and side limits (STYLEKIT_MAX_PIXELS, ...), this app's byte limit.
        self.limits = replace(imaging.ImageLimits.from_env(), max_bytes=settings.max_upload_bytes)
        # (name, the style's revision when it was painted) -> (image, media type).
        self.thumbnails: dict[tuple[str, str], tuple[bytes, str]] = {}
        # One per listed style name (canonical), so a flood of unknown names allocates nothing.
        self._thumbnail_locks: dict[str, anyio.Lock] = {}
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._sample: bytes | None = None
        # Stylize requests admitted and not yet answered (see WebSettings.max_pending).
        self.pending = 0
        self.videos = VideoJobs(max_jobs=settings.max_video_jobs, max_frames=settings.max_video_frames,
                                ttl=settings.video_ttl)  # fmt: skip
        # Live camera connections open now (see WebSettings.max_live).
        self.live = 0

    def stylize(self, photo: bytes, request: wire.StyleRequest) -> bytes:
        """Uploaded bytes in, encoded image out; blocking (call it through :meth:`run`).

        Locally the photo is decoded here (with this app's limits) and the shared engine
        paints it. A style server gets the upload's bytes as they came and, where the client
        can (``send``), answers in the requested format, so nothing is re-encoded.
        """
        assert request.style is not None  # resolve() made the names canonical
        if self.backend is None:
            decoded = imaging.decode(photo, self.limits)
            self.check_work_side(decoded.size, request)
            # Canonical names: the registry resolves them as names, never as files.
            registry = default_registry()
            resolved = registry.resolve(request.style)
            outside = None if request.outside is None else registry.resolve(request.outside)
            painted = api.engine(self.device).run(decoded, resolved, request, outside)
            return imaging.encode(painted, request.format)
        return self.backend.send(photo, request)

    def check_work_side(self, size: tuple[int, int], request: wire.StyleRequest) -> None:
        """A ``scale`` below 1 paints at more than the photo's size: refuse one that would make
        the network paint past this server's longest side (``WebSettings.max_side``), so a
        request's work stays as bounded as a photo's."""
        longest = max(size)
        if request.max_side is not None:
            longest = min(longest, request.max_side)  # resize_max_side never enlarges
        imaging.check_scale_side(longest, request.scale, self.settings.max_side, "this photo")

    async def run(self, fn: partial[T], *, queue: Literal["stylize", "thumbnail", "live", "light"]) -> T:
        """Run blocking work in a worker thread, never on the event loop.

        Each queue has its own limit. ``stylize`` (a person waiting for a result) runs
        ``concurrency`` jobs at a time; ``thumbnail`` one at a time beside it, so a gallery
        being filled never holds up a result; ``live`` one camera frame per connection at
        most; ``light`` work (listing styles, the server's health) uses anyio's default pool
        and never waits behind a photo. (Video jobs have their own thread: ``sdk.web.videos``.)
        """
        if queue == "light":
            return await anyio.to_thread.run_sync(fn)
        limiter = self._limiters.get(queue)
        if limiter is None:
            sizes = {"stylize": self.settings.concurrency, "live": self.settings.max_live}
            size = sizes.get(queue, 1)
            limiter = self._limiters[queue] = anyio.CapacityLimiter(size)
        return await anyio.to_thread.run_sync(fn, limiter=limiter)

    def thumbnail_lock(self, name: str) -> anyio.Lock:
        """The lock for a listed style's thumbnail (``name`` is canonical: the locks stay bounded)."""
        return self._thumbnail_locks.setdefault(name, anyio.Lock())

    def admit(self) -> None:
        """Count a stylize request in, or refuse it (503) when ``max_pending`` are under way."""
        if self.pending >= self.settings.max_pending:
            raise BusyError("The server is busy with other photos; try again in a moment.")
        self.pending += 1

    def release(self) -> None:
        self.pending -= 1

    def sample(self) -> bytes:
        """The sample picture as PNG bytes, at most ``THUMBNAIL_SIDE`` on its longest side."""
        if self._sample is None:
            src = self.settings.sample
            picture = imaging.decode(src if src is not None else landscape(THUMBNAIL_SIDE), self.limits)
            small = imaging.resize_max_side(picture, THUMBNAIL_SIDE)
            self._sample = imaging.encode(imaging.finish(small.rgb, small), "PNG")
        return self._sample

    def thumbnail(self, name: str) -> bytes:
        return self.stylize(self.sample(), wire.StyleRequest(style=name, format="JPEG"))

    def styles(self, refresh: bool = True) -> list[StyleOut]:
        """What the backend serves; ``refresh=False`` lets a style server's client answer from its cache."""
        items = api.list_styles() if self.backend is None else self.backend.styles(refresh=refresh)
        return [_style_out(item) for item in items]

    def resolve(self, style: wire.StyleChoice) -> tuple[wire.StyleChoice, list[StyleOut]]:
        """A style as the request named it -> the same with every name made canonical.

        Names and aliases are looked up in the backend's listing only (case-insensitive):
        nothing a request names is ever opened as a file. A style server's listing is taken
        from the client's cache, and fetched afresh once when a name is not in it.
        """
        names = [style] if isinstance(style, str) else list(style)
        listing = self.styles(refresh=not self.remote)
        index = _name_index(listing)
        if self.remote and any(n.lower() not in index for n in names):
            listing = self.styles(refresh=True)
            index = _name_index(listing)
        for name in names:
            if name.lower() not in index:
                raise UnknownStyleError(wire.unknown_style_message(name, index, "GET /api/styles"))
        if isinstance(style, str):
            return index[style.lower()], listing
        return {index[n.lower()]: w for n, w in style.items()}, listing


def _name_index(listing: Iterable[StyleOut]) -> dict[str, str]:
    """Lowercased name or alias -> name; a name wins over another style's alias."""
    index: dict[str, str] = {}
    for item in listing:
        for alias in item.aliases:
            index.setdefault(alias.lower(), item.name)
    index.update({item.name.lower(): item.name for item in listing})
    return index


def _style_out(info: StyleInfo) -> StyleOut:
    query = f"?v={info.revision}" if info.revision else ""
    return StyleOut(
        name=info.name,
        kind=cast(StyleKind, info.kind if info.kind in get_args(StyleKind) else "unknown"),
        description=info.description,
        aliases=list(info.aliases),
        source=info.source,
        license=info.license or None,
        package=info.package,
        index=info.index,
        revision=info.revision,
        blend_group=info.blend_group,
        thumbnail_url=f"/api/styles/{info.name}/thumbnail{query}",
    )


def create_app(backend: StyleServer | None = None, *, settings: WebSettings | None = None,
               device: str = "auto") -> FastAPI:
    """The web demo app. ``backend=None`` stylizes with the local engine on ``device``."""
    state = _State(backend, settings or WebSettings(), device)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.videos.close()  # the running job stops at its next frame; the temp folder goes

    app = FastAPI(
        title="stylekit web demo",
        version="1.0",
        description="Upload a photo, pick a style, get the painting back.",
        lifespan=lifespan,
    )

    app.add_middleware(Guard, allowed_hosts=state.settings.allowed_hosts)
    app.state.stylekit = state  # for tests and embedders: the limits and caches of this instance

    @app.exception_handler(StylekitError)
    async def _on_stylekit_error(request: Request, exc: StylekitError) -> JSONResponse:
        if isinstance(exc, BusyError):
            log.info("%s %s: %s", request.method, request.url.path, exc.message)
        elif exc.http_status >= 500:
            log.error("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc, remote=state.remote)

    @app.exception_handler(StarletteHTTPException)
    async def _on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # 404 for an unknown path, 405 for a wrong method: the same body as every other error.
        codes = {404: "not_found", 405: "method_not_allowed", 409: "not_ready"}
        code = codes.get(exc.status_code, "http_error")
        messages = {
            404: f"There is nothing at {request.url.path[:100]}.",
            405: f"{request.method} is not allowed here.",
        }
        message = messages.get(exc.status_code, str(exc.detail))
        body = {"error": code, "message": message, "status": exc.status_code}
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
        message = f"Bad request parameter {where or '?'}: {first.get('msg', 'invalid')}."
        return JSONResponse({"error": "bad_option", "message": message, "status": 400}, status_code=400)

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
            video=not state.remote and not extras.missing_modules("video"),
            max_video_bytes=state.settings.max_video_bytes,
            max_video_frames=state.settings.max_video_frames,
            live_fps=state.settings.live_fps,
            live_max_side=state.settings.live_max_side,
            live_max_bytes=state.settings.live_max_bytes,
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
        # Locally, listing is cheap and always current: a removed style is a 404 and a
        # rewritten one is painted afresh. A style server is asked only on a miss.
        cached = state.remote and (name, v) in state.thumbnails
        if not cached:
            # An alias (19, STARRY-NIGHT) shows its style's thumbnail, as stylize accepts it.
            choice, listing = await state.run(partial(state.resolve, wire.parse_name(name)), queue="light")
            assert isinstance(choice, str)
            name = choice
            style = next(item for item in listing if item.name == name)
            v = style.thumbnail_url.partition("?v=")[2]
        async with state.thumbnail_lock(name):
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
        # Admitted before the body is read: a refused upload never takes memory here.
        state.admit()
        try:
            return await _stylize(request)
        finally:
            state.release()

    async def _stylize(request: Request) -> Response:
        limit = state.settings.max_upload_bytes
        form = await read_form(request, limit, state.settings.body_timeout)
        photo = await _file_bytes(form, "image", limit, required=True)
        assert photo is not None
        painting = await _file_bytes(form, "style_image", limit, required=False)
        mask = await _file_bytes(form, "mask", limit, required=False)
        _within(limit, photo, painting, mask)
        asked, _ = _form_request(form, painting[0] if painting else None, mask=mask[0] if mask else None)
        if asked.style is None and painting is None:
            raise BadOptionError("Choose a style (or upload a painting to copy its style).")
        checked = await _checked(asked)
        data = await state.run(partial(state.stylize, photo[0], checked), queue="stylize")
        assert checked.style is not None
        disposition = content_disposition(photo[1], checked.style, painting[1] if painting else None,
                                          checked.format)  # fmt: skip
        return Response(
            data,
            media_type=imaging.MIME[checked.format],
            headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
        )

    @app.post(
        "/api/videos",
        status_code=202,
        response_model=VideoJobOut,
        openapi_extra={"requestBody": _VIDEO_BODY},
        responses={**_ERRORS, 400: {"model": ErrorOut, "description": "bad option, or a TorchServe backend"}},
    )
    async def start_video(request: Request) -> VideoJobOut:
        """Start stylizing an uploaded clip; poll `GET /api/videos/{id}` for progress."""
        if state.remote:
            # Frames through TorchServe would be one HTTP round trip each; not offered.
            raise BadOptionError(VIDEO_NEEDS_LOCAL)
        extras.require("video", "Video in the web page")
        # A slot is reserved before the body is read, as for photos.
        job_id = state.videos.admit()
        try:
            return await _start_video(request, job_id)
        except BaseException:
            state.videos.cancel_admission(job_id)
            raise

    async def _start_video(request: Request, job_id: str) -> VideoJobOut:
        from sdk.video import DEFAULT_TEMPORAL, check_temporal

        limit = state.settings.max_video_bytes
        form = await read_form(request, limit, state.settings.body_timeout)
        clip = await _file_bytes(form, "video", limit, required=True, media="video")
        assert clip is not None
        painting = await _file_bytes(form, "style_image", state.settings.max_upload_bytes, required=False)
        mask = await _file_bytes(form, "mask", state.settings.max_upload_bytes, required=False)
        _within(state.settings.max_upload_bytes, painting, mask)
        painting_bytes = painting[0] if painting else None
        asked, extra = _form_request(form, painting_bytes, VIDEO_FILES, extra=("temporal",),
                                     mask=mask[0] if mask else None)  # fmt: skip
        if "format" in form:
            raise BadOptionError("A video comes back as MP4: leave out the field 'format'.")
        temporal = DEFAULT_TEMPORAL
        if "temporal" in extra:  # wire's rule for numbers; 0..1 is check_temporal's range
            temporal = check_temporal(wire.parse_float("temporal", extra["temporal"]))
        if asked.style is None and painting is None:
            raise BadOptionError("Choose a style (or upload a painting to copy its style).")
        checked = await _checked(asked)
        start = partial(state.videos.start, job_id, clip[0], clip[1], checked, temporal,
                        painting[1] if painting else None, state.device)  # fmt: skip
        await state.run(start, queue="light")  # writes the clip: not on the event loop
        return VideoJobOut(id=job_id)

    async def _checked(asked: wire.StyleRequest) -> wire.StyleRequest:
        """The request with its style (and ``outside``) named canonically, looked up in the
        listing (never a file), and its longest side capped by the server's own limit."""
        style, _ = await state.run(partial(state.resolve, asked.style or "arbitrary"), queue="light")
        outside: wire.StyleChoice | None = None
        if asked.outside is not None:
            outside = (await state.run(partial(state.resolve, asked.outside), queue="light"))[0]
        max_side = min(asked.max_side or state.settings.max_side, state.settings.max_side)
        return replace(asked, style=style, max_side=max_side, outside=outside)

    def _job(job_id: str) -> Job:
        # Ids are random dictionary keys, never paths; anything else is simply not found.
        job = state.videos.get(job_id) if _JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise StarletteHTTPException(404)
        return job

    @app.get("/api/videos/{job_id}", response_model=VideoStatusOut, responses={404: {"model": ErrorOut}})
    async def video_status(job_id: str) -> VideoStatusOut:
        """A video job's state and progress."""
        job = _job(job_id)
        return VideoStatusOut(
            state=job.state,
            frames_done=job.frames_done,
            frames_total=job.frames_total,
            fps=round(job.fps, 2),
            eta_s=None if job.eta_s is None else round(job.eta_s, 1),
            error=None if job.error is None else ErrorOut.model_validate(job.error),
        )

    @app.get(
        "/api/videos/{job_id}/result",
        response_class=FileResponse,
        responses={
            200: {"content": {"video/mp4": {}}, "description": "the stylized clip (sent once)"},
            404: {"model": ErrorOut},
            409: {"model": ErrorOut, "description": "not finished yet, or failed"},
        },
    )
    async def video_result(job_id: str) -> FileResponse:
        """The stylized MP4, as an attachment; the job is dropped once it is sent."""
        job = _job(job_id)
        if job.state == "failed":
            message = str(job.error["message"]) if job.error else "The video could not be stylized."
            raise StarletteHTTPException(409, detail=message)
        if job.state != "done":
            raise StarletteHTTPException(409, detail="The video is not ready yet; see GET /api/videos/{id}.")
        disposition = content_disposition(job.name, job.style, job.painting_name, "MP4")
        return FileResponse(
            job.output,
            media_type="video/mp4",
            headers={"Content-Disposition": disposition, "Cache-Control": "no-store"},
            background=BackgroundTask(state.videos.drop, job.id),
        )

    @app.websocket("/api/live")
    async def live(websocket: WebSocket) -> None:
        """Camera frames in, stylized frames out (see sdk.web.live)."""
        await serve_live(state, websocket)

    return app


_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PHOTO_FIELDS: dict[str, Any] = _STYLIZE_BODY["content"]["multipart/form-data"]["schema"]["properties"]

_VIDEO_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["video"],
                "properties": {
                    "video": {"type": "string", "format": "binary", "description": "the clip"},
                    **{k: v for k, v in _PHOTO_FIELDS.items() if k not in ("image", "format")},
                    "temporal": {
                        "type": "number", "minimum": 0, "maximum": 1, "default": 0.8,
                        "description": "how much each frame follows the previous one (0: frame by frame)",
                    },
                },
            }
        }
    },
}
