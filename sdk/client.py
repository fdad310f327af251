"""A client for stylekit on TorchServe: ``StyleClient(url, token).stylize(img, style="...")``.

It speaks TorchServe's REST APIs (inference, management, metrics) with the handler's request
format (``handlers/stylize_handler.py``), maps every failure to the ``StylekitError`` family
with the server's own message, retries what a retry can fix (503, a worker that died, a server
that is restarting), and implements :class:`sdk.api.Backend`, so
``sdk.stylize(img, style=..., backend=client)`` runs the same call remotely.

Style names are the ones the server's archives provide: a multistyle archive serves each of
its sub-styles (``starry-night``), other archives their own name. The client learns which archive
serves which style from the management API (``styles()``); without management access a
style name is taken as the archive's name.

No torch import on this path: a remote-only user needs httpx, Pillow and numpy.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from sdk import settings, wire
from sdk.errors import (
    AuthenticationError,
    BadOptionError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidMaskError,
    ServerError,
    ServerUnavailableError,
    StylekitError,
    StylePackageError,
    UnknownStyleError,
)
from sdk.info import StyleInfo

if TYPE_CHECKING:
    from PIL import Image

    from sdk.imaging import ImageInput
    from sdk.serving.state import ServerState

log = logging.getLogger(__name__)

# Our handler's error codes -> the class a local call would raise for the same mistake.
_ERRORS_BY_CODE: dict[str, type[StylekitError]] = {
    "invalid_image": InvalidImageError,
    "invalid_mask": InvalidMaskError,
    "image_too_large": ImageTooLargeError,
    "bad_option": BadOptionError,
    "unknown_style": UnknownStyleError,
    "style_package_error": StylePackageError,
}
_RETRY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class BulkResult:
    """One item of :meth:`StyleClient.stylize_many`: the input and its image or its error."""

    source: str
    image: Image.Image | None = None
    error: StylekitError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_prometheus(text: str) -> dict[str, list[dict[str, Any]]]:
    """Prometheus text format -> ``{metric: [{"labels": {...}, "value": float}, ...]}``."""
    metrics: dict[str, list[dict[str, Any]]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        labels: dict[str, str] = {}
        if "{" in line:
            name, rest = line.split("{", 1)
            body, _, value_part = rest.rpartition("}")
            labels = _parse_labels(body)
        else:
            name, _, value_part = line.partition(" ")
        fields = value_part.split()
        if not fields:
            continue
        try:
            value = float(fields[0])
        except ValueError:
            log.debug("skipping unparsable metrics line %r", line)
            continue
        metrics.setdefault(name.strip(), []).append({"labels": labels, "value": value})
    return metrics


def _parse_labels(body: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    i, n = 0, len(body)
    while i < n:
        eq = body.find("=", i)
        if eq < 0:
            break
        key = body[i:eq].strip().lstrip(",").strip()
        j = eq + 1
        if j >= n or body[j] != '"':
            break
        j += 1
        value = []
        while j < n and body[j] != '"':
            if body[j] == "\\" and j + 1 < n:
                j += 1
                value.append({"n": "\n"}.get(body[j], body[j]))
            else:
                value.append(body[j])
            j += 1
        labels[key] = "".join(value)
        i = j + 1
    return labels


def _with_port_offset(url: str, offset: int) -> str | None:
    parts = urlsplit(url)
    if parts.port is None or parts.hostname is None:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, f"{host}:{parts.port + offset}", "", "", ""))


_NO_RETRY = "stylekit.no_retry"  # a request extension: send once (calls that change the server)


def bearer(token: str | None) -> dict[str, str]:
    """The ``Authorization`` header for a TorchServe key (none without a key)."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class RetryTransport(httpx.BaseTransport):
    """Sends again what a restart or an overload costs: refused connections, 502/503/504 and
    TorchServe's "Worker died." answers (whatever their status), up to ``retries`` times.

    The wait doubles each time from ``backoff`` seconds, times a random factor in [0.5, 1.5) so
    that clients refused together do not come back together; a ``Retry-After`` answer is
    honoured (at most :attr:`max_delay`). A timeout is not retried: the server may still be
    working on the request. Requests with the ``stylekit.no_retry`` extension go once.
    """

    max_delay = 30.0

    def __init__(
        self,
        inner: httpx.BaseTransport,
        retries: int,
        backoff: float,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.inner, self.retries, self.backoff = inner, retries, backoff
        self._sleep, self._rng = sleep, rng

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        attempts = 1 if request.extensions.get(_NO_RETRY) else self.retries + 1
        request.read()  # the body is sent again on a retry
        for attempt in range(1, attempts + 1):
            try:
                response = self.inner.handle_request(request)
            except httpx.TimeoutException:
                raise
            except httpx.TransportError as exc:
                if attempt == attempts:
                    raise
                log.info("attempt %d: cannot reach %s: %s", attempt, request.url, exc)
                self._sleep(self._delay(attempt, None))
                continue
            if attempt == attempts or not _worth_retrying(response):
                return response
            response.read()
            log.info("attempt %d: %s %s", attempt, response.status_code, response.text.strip()[:200])
            response.close()
            self._sleep(self._delay(attempt, response.headers.get("retry-after")))
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after.strip()), self.max_delay)
        return min(float(self.backoff * 2 ** (attempt - 1) * (0.5 + self._rng())), self.max_delay)

    def close(self) -> None:
        self.inner.close()


def _worth_retrying(response: httpx.Response) -> bool:
    """The transport's view of the one rule (:func:`_retryable` on the typed error)."""
    if response.status_code < 400:
        return False
    response.read()
    return _retryable(response, _error_from_response(response))


class KeyAuth(httpx.Auth):
    """TorchServe's bearer key for one API; when a key from the server's key file is refused
    (keys expire), it is renewed once (:meth:`StyleClient._renew_key`) and the request re-sent."""

    requires_response_body = True

    def __init__(self, client: StyleClient, *, management: bool) -> None:
        self._client, self._management = client, management

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        token, from_file = self._client._token_for(self._management)
        request.headers.update(bearer(token))
        response = yield request
        refused = response.status_code >= 400 and isinstance(
            _error_from_response(response), AuthenticationError
        )
        if from_file and refused and self._client._renew_key(self._management, refused=token):
            request.headers.update(bearer(self._client._token_for(self._management)[0]))
            yield request


class StyleClient:
    """Stylize on a TorchServe running stylekit's handler; a :class:`sdk.api.Backend`.

    ``url``: the inference API (``http://127.0.0.1:8080``); ``None`` means ``$STYLEKIT_SERVER``
    or the server that ``stylekit serve start`` runs (its state file). ``token``: the inference
    key; ``None`` means ``$STYLEKIT_TOKEN`` or the server's ``key_file.json``. The management
    and metrics APIs default to the state file's addresses, else the next two ports after
    ``url`` (the layout ``stylekit serve`` uses); the management key defaults the same way
    (``management_token``, ``$STYLEKIT_MANAGEMENT_TOKEN``, key file, else ``token``).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 0.5,
        management_url: str | None = None,
        metrics_url: str | None = None,
        management_token: str | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise BadOptionError("retries and backoff must be >= 0 and timeout > 0.")
        url = url or settings.get(settings.SERVER)
        token = token or settings.get(settings.TOKEN)
        # Local state is read only to find what was not given: a remote URL with its token
        # never touches this machine's files (a corrupt state file there cannot break it).
        state = _local_state(run_dir, required=url is None) if url is None or token is None else None
        if url is None:
            if state is None:
                raise ServerUnavailableError(
                    "No server URL given, $STYLEKIT_SERVER is not set and no 'stylekit serve start' "
                    "server was found; pass StyleClient(url, token=...)."
                )
            url = state.inference_url
        self.url = url.rstrip("/")
        # The state file describes this server only if it is the one asked for.
        own = state if state is not None and state.inference_url.rstrip("/") == self.url else None
        self.management_url = (
            management_url
            or (own.management_url if own else None)
            or _with_port_offset(self.url, 1)
            or self.url
        ).rstrip("/")
        self.metrics_url = (
            metrics_url or (own.metrics_url if own else None) or _with_port_offset(self.url, 2) or self.url
        ).rstrip("/")
        self._key_file = own.key_file if own is not None else None
        self._token = token
        self._management_token = management_token or settings.get(settings.MANAGEMENT_TOKEN)
        self._file_keys: dict[str, str] = {}
        if self._key_file is not None:
            try:
                self._file_keys = self._read_keys()
            except ServerError as exc:  # a server still starting: the first refusal re-reads it
                log.info("%s", exc.message)
        self._key_lock = threading.Lock()
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        network = transport or httpx.HTTPTransport(limits=httpx.Limits(max_connections=64))
        self._http = httpx.Client(timeout=timeout, transport=RetryTransport(network, retries, backoff))
        self._auths = {False: KeyAuth(self, management=False), True: KeyAuth(self, management=True)}
        self._catalog: dict[str, StyleInfo] | None = None
        self._lock = threading.Lock()

    # -- plumbing ------------------------------------------------------------------------------

    def _read_keys(self) -> dict[str, str]:
        from sdk.serving.state import read_key_file

        assert self._key_file is not None
        return read_key_file(self._key_file)

    def _token_for(self, management: bool) -> tuple[str | None, bool]:
        """The token for an API and whether it came from the server's key file."""
        if management:
            explicit = self._management_token
            from_file = self._file_keys.get("management")
            fallback = self._token
        else:
            explicit, from_file, fallback = self._token, self._file_keys.get("inference"), None
        if explicit:
            return explicit, False
        if from_file or (self._key_file is not None and fallback is None):
            return from_file, True  # (None while the file is unreadable: a refusal re-reads it)
        return fallback, False

    def _auth(self, management: bool) -> dict[str, str]:
        token, _ = self._token_for(management)
        return bearer(token)

    def _renew_key(self, management: bool, refused: str | None) -> bool:
        """After the server refused the key-file key ``refused``: pick up a newer one, or have one made.

        TorchServe keys expire (60 min by default); its token API, called with the key file's
        API key, writes fresh ones into the key file. True if there is now another key to try.
        Serialized, so that concurrent refusals renew once instead of invalidating each other.
        """
        kind = "management" if management else "inference"
        with self._key_lock:
            try:
                self._file_keys = self._read_keys()
                if self._file_keys.get(kind) == refused and self._file_keys.get("api"):
                    self._http.post(
                        f"{self.management_url}/token",
                        params={"type": kind},
                        headers=bearer(self._file_keys["api"]),
                        extensions={_NO_RETRY: True},
                    )
                    self._file_keys = self._read_keys()
            except (ServerError, httpx.HTTPError) as exc:
                log.info("could not renew the %s key: %s", kind, exc)
                return False
            renewed = self._file_keys.get(kind) != refused
        log.info("%s key %s", kind, "renewed" if renewed else "unchanged")
        return renewed

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StyleClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StyleClient({self.url!r})"

    def _request(
        self,
        method: str,
        url: str,
        *,
        management: bool = False,
        retry: bool = True,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one call (the transport retries, the auth flow renews keys); raise typed errors."""
        try:
            resp = self._http.request(
                method, url, auth=self._auths[management], extensions={_NO_RETRY: not retry}, **kwargs
            )
        except httpx.TimeoutException as exc:
            raise ServerUnavailableError(f"{url} did not answer within {self.timeout:g} s.", 504) from exc
        except httpx.TransportError as exc:
            raise ServerUnavailableError(f"Cannot reach the style server at {url}: {exc}.") from exc
        if resp.status_code < 400:
            return resp
        error = _error_from_response(resp)
        gave_up = retry and self.retries and _retryable(resp, error)
        if gave_up and not isinstance(error, ServerUnavailableError):
            message = f"Gave up after {self.retries + 1} attempts: {error.message}"
            raise ServerUnavailableError(message, resp.status_code)
        raise error

    # -- styles and models -------------------------------------------------------------------

    def models(self) -> list[str]:
        """Names of the models (archives) the server has registered."""
        names: list[str] = []
        next_page: str | None = ""
        while next_page is not None:
            params = {"limit": "100", **({"next_page_token": next_page} if next_page else {})}
            body = self._request(
                "GET", f"{self.management_url}/models", management=True, params=params
            ).json()
            names += [str(m["modelName"]) for m in body.get("models", [])]
            next_page = body.get("nextPageToken") or None
        return names

    def describe(self, name: str, *, retry: bool = True, customized: bool = True) -> dict[str, Any]:
        """TorchServe's model description plus the handler's package description (``stylekit``;
        ``customized=False`` leaves it out: TorchServe asks a worker for it, and one may not run yet)."""
        resp = self._request(
            "GET", f"{self.management_url}/models/{quote(name, safe='')}", management=True,
            params={"customized": str(customized).lower()}, retry=retry,
        )  # fmt: skip
        entries = resp.json()
        entry: dict[str, Any] = dict(entries[0]) if isinstance(entries, list) and entries else {}
        # TorchServe embeds the handler's JSON as an object (older versions: as a string).
        custom = entry.pop("customizedMetadata", None)
        if isinstance(custom, str):
            try:
                custom = json.loads(custom)
            except json.JSONDecodeError:
                custom = None
        entry["stylekit"] = custom if isinstance(custom, dict) else None
        return entry

    def styles(self, refresh: bool = True) -> list[StyleInfo]:
        """Every style the server offers (a multistyle archive lists each sub-style), described
        as ``sdk.list_styles()`` describes local ones; ``package`` is the model serving it."""
        with self._lock:
            if self._catalog is None or refresh:
                catalog: dict[str, StyleInfo] = {}
                for model in self.models():
                    try:
                        info = self.describe(model, retry=False).get("stylekit") or {}
                    except ServerUnavailableError as exc:
                        # The package description comes from a worker; with none running
                        # (scaled to 0, restarting) list the model under its own name.
                        log.info("no description of %s: %s", model, exc.message)
                        info = {}
                    shared = {"kind": info.get("kind"), "source": info.get("source")}
                    origin = f"server:{self.url}"
                    for sub in info.get("styles") or [{"name": model}]:
                        style = StyleInfo.from_dict({**shared, **sub}, package=model, origin=origin)
                        catalog.setdefault(style.name.lower(), style)
                self._catalog = catalog
            return sorted(self._catalog.values(), key=lambda s: (s.package or "", s.index or 0, s.name))

    def _target(self, style: str) -> tuple[str, str]:
        """``style`` -> (model to post to, style name for the handler).

        ``"model:style"`` names both and needs no management access (KServe, a proxy).
        """
        model, sep, name = style.partition(":")
        if sep and model and name:
            return model, name
        return self._model_for(style), style

    def _model_for(self, style: str) -> str:
        key = style.lower()
        try:
            if self._catalog is None or not self._known(key):
                self.styles(refresh=True)
        except (AuthenticationError, ServerUnavailableError) as exc:
            # No management access (a proxy, KServe): take the name as the archive's name.
            log.debug("cannot list the server's styles (%s); using %r as the model name", exc.message, style)
            return style
        assert self._catalog is not None
        for remote in self._catalog.values():
            if key == remote.name.lower() or key in (a.lower() for a in remote.aliases):
                return remote.package or remote.name
        if any((remote.package or "").lower() == key for remote in self._catalog.values()):
            return style
        names = ", ".join(sorted(self._catalog))
        raise UnknownStyleError(f"The server at {self.url} has no style {style!r} (it has: {names}).")

    def _known(self, key: str) -> bool:
        assert self._catalog is not None
        return any(
            key == s.name.lower() or key == (s.package or "").lower() or key in (a.lower() for a in s.aliases)
            for s in self._catalog.values()
        )

    def health(self) -> dict[str, Any]:
        """``/ping``: ``{"status": "Healthy"}`` when every model has its workers."""
        body = self._request("GET", f"{self.url}/ping", retry=False).json()
        return dict(body) if isinstance(body, dict) else {"status": str(body)}

    def scale(self, name: str, workers: int, *, wait: bool = True) -> dict[str, Any]:
        """Set the model's worker count (min = max = ``workers``)."""
        if workers < 0:
            raise BadOptionError(f"workers must be >= 0, not {workers}.")
        params = {"min_worker": str(workers), "max_worker": str(workers), "synchronous": str(wait).lower()}
        url = f"{self.management_url}/models/{quote(name, safe='')}"
        resp = self._request("PUT", url, management=True, params=params)
        return dict(resp.json())

    def register(self, archive: str, *, workers: int = 1, wait: bool = True) -> dict[str, Any]:
        """Register an archive from the server's model store (needs ``--enable-model-api``)."""
        params = {"url": archive, "initial_workers": str(workers), "synchronous": str(wait).lower()}
        try:
            resp = self._request(
                "POST", f"{self.management_url}/models", management=True, params=params, retry=False
            )
        except ServerError as exc:
            if exc.http_status == 405:
                raise ServerError(
                    "This server's model API is off (TorchServe --enable-model-api).", 405
                ) from exc
            raise
        self._catalog = None
        return dict(resp.json())

    def unregister(self, name: str) -> dict[str, Any]:
        """Unregister a model (needs ``--enable-model-api``)."""
        url = f"{self.management_url}/models/{quote(name, safe='')}"
        resp = self._request("DELETE", url, management=True, retry=False)
        self._catalog = None
        return dict(resp.json())

    def metrics(self) -> dict[str, list[dict[str, Any]]]:
        """The metrics API's Prometheus text, parsed (see :func:`parse_prometheus`)."""
        resp = self._request("GET", f"{self.metrics_url}/metrics", management=True)
        return parse_prometheus(resp.text)

    # -- stylizing -----------------------------------------------------------------------------

    def stylize(
        self,
        image: ImageInput,
        style: str | os.PathLike[str] | Mapping[str, float],
        *,
        style_image: ImageInput | None = None,
        strength: float = 1.0,
        preserve_color: bool = False,
        max_side: int | None = None,
        format: str = "PNG",
        scale: float = 1.0,
        mask: ImageInput | None = None,
        outside: str | os.PathLike[str] | Mapping[str, float] | None = None,
    ) -> Image.Image:
        """Stylize on the server; same options and errors as :func:`sdk.stylize`. (The encoded
        answer as it came: :meth:`send`.) ``outside`` must be served by the same model as
        ``style``: one handler serves one package."""
        from sdk import imaging

        request = wire.StyleRequest(
            style=_remote_choice(style), strength=strength, preserve_color=preserve_color, max_side=max_side,
            format=format, style_image=style_image, scale=scale, mask=mask,
            outside=None if outside is None else _remote_choice(outside),
        )  # fmt: skip
        decoded = imaging.decode(self.send(image, request))
        return imaging.finish(decoded.rgb, decoded)

    def send(self, image: ImageInput, request: wire.StyleRequest) -> bytes:
        """Send one checked request (its wire form, ``StyleRequest.to_fields``, and its image
        parts ``style_image`` and ``mask``); the encoded image the server answered with, in
        ``request.format``. ``style`` and ``outside`` go to the one model that serves both."""
        if request.style is None:
            raise BadOptionError("Name a style: a server serves several.")
        model, style = self._route(request.style)
        outside = None
        if request.outside is not None:
            other, outside = self._route(request.outside)
            if other != model:
                raise BadOptionError(
                    f"style {wire.shown(wire.encode_style(request.style))} is served by the model "
                    f"{model!r} and outside= {wire.shown(wire.encode_style(request.outside))} by "
                    f"{other!r}; one request runs on one model, so name two styles of one model."
                )
        files = {"image": _upload(image, "image")}
        if request.style_image is not None:
            files["style_image"] = _upload(request.style_image, "style_image")
        if request.mask is not None:
            files["mask"] = _upload_mask(request.mask)
        fields = replace(request, style=style, outside=outside).to_fields()
        url = f"{self.url}/predictions/{quote(model, safe='')}"
        resp = self._request("POST", url, data=fields, files=files)
        return resp.content

    def _route(self, choice: wire.StyleChoice) -> tuple[str, wire.StyleChoice]:
        """A style or blend -> (the model serving it, the choice in the handler's names)."""
        if isinstance(choice, str):
            return self._target(choice)
        targets = [self._target(str(n)) for n in choice]
        models = {m for m, _ in targets}
        if len(models) != 1:
            raise BadOptionError(
                "A blend needs sub-styles of one network; these are served by "
                f"different models ({', '.join(sorted(models))})."
            )
        return models.pop(), {n: w for (_, n), w in zip(targets, choice.values(), strict=True)}

    def stylize_many(
        self,
        images: Iterable[ImageInput],
        style: str | Mapping[str, float],
        *,
        concurrency: int = 8,
        progress: bool = True,
        **options: Any,
    ) -> Iterator[BulkResult]:
        """Stylize many images with at most ``concurrency`` requests in flight; results in input order.

        ``options`` are :meth:`stylize`'s (``strength``, ``scale``, ``mask``, ``outside``, ...), the
        same for every image (a mask is fitted to each). One failing image does not stop the
        others: its :class:`BulkResult` carries the error.
        """
        if concurrency < 1:
            raise BadOptionError(f"concurrency must be >= 1, not {concurrency}.")
        items = list(images)
        # An image part given as an open file is read once: every request sends the same bytes.
        for part in wire.IMAGE_PARTS:
            given = options.get(part)
            if given is not None and hasattr(given, "read"):
                data = given.read()
                if not isinstance(data, bytes):
                    raise InvalidImageError(f"A file object given as {part} must be opened in binary mode.")
                options[part] = data
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), unit="img", desc="stylize")

        def one(item: ImageInput) -> BulkResult:
            label = str(item) if isinstance(item, (str, os.PathLike)) else type(item).__name__
            try:
                return BulkResult(label, image=self.stylize(item, style, **options))
            except StylekitError as exc:
                return BulkResult(label, error=exc)

        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="stylekit-client") as pool:
            pending: list[Future[BulkResult]] = []
            try:
                # Keep a bounded window in flight so huge lists never queue all their uploads.
                for item in items:
                    pending.append(pool.submit(one, item))
                    if len(pending) >= concurrency * 2:
                        yield self._finish(pending.pop(0), bar)
                while pending:
                    yield self._finish(pending.pop(0), bar)
            finally:
                for fut in pending:
                    fut.cancel()
                if bar is not None:
                    bar.close()

    @staticmethod
    def _finish(fut: Future[BulkResult], bar: Any) -> BulkResult:
        result = fut.result()
        if bar is not None:
            bar.update(1)
        return result


def _local_state(run_dir: str | os.PathLike[str] | None, *, required: bool) -> ServerState | None:
    """The state file of a server ``stylekit serve`` runs here; an unreadable one is an error
    only when the caller has no other way to find a server."""
    from sdk.serving.state import ServerState

    try:
        return ServerState.load(run_dir)
    except ServerError as exc:
        if required:
            raise
        log.warning("ignoring the local server state: %s", exc.message)
        return None


def _remote_choice(style: str | os.PathLike[str] | Mapping[str, float]) -> wire.StyleChoice:
    """A style as a server is sent it: a name or a blend, never a package file."""
    if isinstance(style, os.PathLike) or (isinstance(style, str) and style.endswith((".pt", ".json"))):
        raise BadOptionError("A server serves its own archives; name one of its styles, not a package file.")
    return dict(style) if isinstance(style, Mapping) else style


def _upload_mask(mask: ImageInput) -> tuple[str, bytes, str]:
    """A mask as a multipart file: file bytes as they are (the server reads them as it reads
    a local mask); a PIL image or an array is read here as the engine reads it
    (:func:`sdk.imaging.read_mask`) and sent as a greyscale PNG, so it means the same there."""
    if isinstance(mask, (bytes, bytearray, str, os.PathLike)) or hasattr(mask, "read"):
        return _upload(mask, "mask")
    from PIL import Image as PILImage

    from sdk import imaging

    value = imaging.read_mask(mask)
    return ("mask.png", imaging.encode(PILImage.fromarray(value, "L"), "PNG"), "image/png")


def _upload(image: ImageInput, field_name: str) -> tuple[str, bytes, str]:
    """An image as a multipart file: file bytes are sent as they are, the server decodes them."""
    if isinstance(image, (bytes, bytearray)):
        return (field_name, bytes(image), "application/octet-stream")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        try:
            return (path.name, path.read_bytes(), "application/octet-stream")
        except OSError as exc:
            raise InvalidImageError(f"Cannot read image {path}: {exc.strerror or exc}.") from exc
    if hasattr(image, "read"):
        data = image.read()
        if not isinstance(data, bytes):
            raise InvalidImageError("A file object given as image must be opened in binary mode.")
        return (field_name, data, "application/octet-stream")
    # PIL images and arrays: through the one image pipeline, sent losslessly as PNG.
    from sdk import imaging

    decoded = imaging.decode(image)
    return (f"{field_name}.png", imaging.encode(imaging.finish(decoded.rgb, decoded), "PNG"), "image/png")


def _error_from_response(resp: httpx.Response) -> StylekitError:
    """A server answer >= 400 -> the matching ``StylekitError`` with the server's message."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):  # our handler's body
        message = str(body.get("message", body["error"]))
        cls = _ERRORS_BY_CODE.get(body["error"])
        return cls(message) if cls is not None else ServerError(message, status)
    message = str(body.get("message", "")) if isinstance(body, dict) else resp.text.strip()[:500]
    kind = str(body.get("type", "")) if isinstance(body, dict) else ""
    message = message or f"HTTP {status} {resp.reason_phrase}"
    if kind == "InvalidKeyException" or status in (401, 403):
        return AuthenticationError(f"The server refused the token: {message}", status)
    if status == 404 and kind in ("ModelNotFoundException", "ModelVersionNotFoundException"):
        return UnknownStyleError(message)
    if status == 413:
        return ImageTooLargeError(f"The server refused the upload as too large: {message}")
    if status in _RETRY_STATUSES or "worker died" in message.lower():
        return ServerUnavailableError(message, status)
    return ServerError(message, status)


def _retryable(resp: httpx.Response, error: StylekitError) -> bool:
    return isinstance(error, ServerUnavailableError) or resp.status_code in _RETRY_STATUSES


__all__ = ["BulkResult", "StyleClient", "parse_prometheus"]
