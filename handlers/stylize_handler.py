"""TorchServe handler for stylekit style packages (every kind: feedforward, multistyle, arbitrary).

The archive holds the package's TorchScript file and its manifest (``stylekit archive``); the
worker imports the installed ``sdk`` package, so the server's Python environment must have
stylekit installed (``pip install stylekit[serve]``). The handler is thin on purpose: decoding,
validation, inference, tiling and encoding all happen in ``sdk.imaging`` and ``sdk.engine``.

A request is one image, sent as
- the raw body (``Content-Type: image/jpeg``, ``image/png``, ...), options in ``X-Stylekit-*``
  headers (``X-Stylekit-Style: starry-night``, ``X-Stylekit-Strength: 0.8``, ...);
- a multipart form: the image in the field ``image`` (or ``data``/``file``), the style image of
  the arbitrary kind in ``style_image``, the mask in ``mask``, options as further fields;
- a JSON object: ``{"image": "<base64>", "style": "starry-night", "strength": 0.8, ...}``
  (``style_image`` and ``mask`` as base64 too).
A raw body is the photo alone: headers carry options, never a style image or a mask.

Options, read by ``sdk.wire`` as every front end reads them: ``style`` (one of this package's
names or aliases, never a file; or a blend ``{"starry-night": 0.7, "red-storm": 0.3}``, a JSON
string in form fields and headers), ``strength`` (a finite number, 0..1), ``preserve_color``
(bool), ``format`` (PNG, JPEG, WEBP), ``max_side`` (whole number, 1..20000), ``scale`` (stroke
size, a finite number 0.25..8: the network paints at the photo's size divided by it, the
answer has the photo's size), ``outside`` (a style or blend of this package, like ``style``:
what the mask's black takes instead of the photo; needs a mask). Image parts: ``style_image``
(arbitrary kind) and ``mask`` (any image mode and size, resized to the photo: white takes the
style, black or transparent keeps the photo's pixels, grey blends; a bad mask is a 400
``invalid_mask``).
The answer is the encoded image with its content type, or for a bad item a JSON error body
(``StylekitError.to_dict()``) with its own 4xx status while the rest of the batch succeeds.

``GET /models/<name>?customized=true`` on the management API returns the package description
(kind, sub-styles with aliases, source, license) that ``StyleClient.styles()`` lists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ts.torch_handler.base_handler import BaseHandler

from handlers.requests import Item, parse_request
from sdk import imaging
from sdk.allocator import keep_freed_memory
from sdk.engine import Engine
from sdk.errors import InvalidMaskError, StylekitError
from sdk.info import StyleInfo
from sdk.package import ResolvedStyle, StylePackage, read_package

log = logging.getLogger(__name__)

WARMUP_SIDE = 64
# One item of a batch, ready to run: its index in the batch, its request, its decoded image.
Member = tuple[int, Item, imaging.DecodedImage]
# The style where the mask is white, and the one where it is black (None: the photo).
Styles = tuple[ResolvedStyle, ResolvedStyle | None]
# What a client is told when something unforeseen fails: no detail of the server's insides.
INTERNAL_ERROR = "Stylizing this image failed on the server."


class StylizeHandler(BaseHandler):  # type: ignore[misc]  # BaseHandler is untyped
    """Serves one style package; per-item status so one bad image never fails its batch."""

    def initialize(self, context: Any) -> None:
        props = context.system_properties
        self.manifest = context.manifest
        model_dir = Path(props["model_dir"])
        serialized = self.manifest["model"]["serializedFile"]
        self.package: StylePackage = read_package(model_dir / Path(serialized).with_suffix(".json"))
        pkg = self.package.manifest
        gpu_id = props.get("gpu_id")
        # TorchServe assigns each worker a GPU (round robin) when the server has any.
        device = f"cuda:{gpu_id}" if gpu_id is not None and torch.cuda.is_available() else "cpu"
        # A style in a request is one of this package's names or aliases (StylePackage.resolve
        # reads them from the manifest): never a file, and no registry is needed.
        self.styles = StyleInfo.from_package(self.package, origin=f"torchserve:{pkg.name}")
        if device == "cpu":
            keep_freed_memory()  # a worker process that only stylizes (sdk.allocator)
        # half=None: float16 on CUDA where the manifest allows it, float32 elsewhere. The runner
        # (sdk.runners): the model config's `handler: {runner: ...}`, else STYLEKIT_RUNNER/auto.
        yaml_config = getattr(context, "model_yaml_config", None) or {}
        handler_config = yaml_config.get("handler") if isinstance(yaml_config, dict) else None
        runner = handler_config.get("runner") if isinstance(handler_config, dict) else None
        self.engine = Engine(device=device, half=None, runner=runner)
        self.half = device.startswith("cuda") and pkg.input.half
        # Decoding and encoding release the GIL: a batch's images are decoded, and its results
        # encoded, side by side on every core instead of one after the other.
        self._codec_pool = ThreadPoolExecutor(max(1, torch.get_num_threads()), "stylekit-codec")
        self._warm_up()
        self.initialized = True
        log.info(
            "stylekit handler ready: %s (%s, %d style(s)) on %s, %s runner, %d torch thread(s)",
            pkg.name, pkg.kind, len(self.styles), device, self.engine.load(self.package).runner,
            torch.get_num_threads(),
        )  # fmt: skip

    def _warm_up(self) -> None:
        """One small image through the whole path, so the first request does not pay for loading."""
        start = time.perf_counter()
        gray = np.full((WARMUP_SIDE, WARMUP_SIDE, 3), 128, dtype=np.uint8)
        style_image = gray if self.package.manifest.kind == "arbitrary" else None
        first = self.package.resolve(self.styles[0].name)
        self.engine.stylize(imaging.decode(gray), first, style_image=style_image)
        log.info("warm-up took %.2f s", time.perf_counter() - start)

    def describe_handle(self) -> str:
        """The package description returned by ``GET /models/<name>?customized=true``."""
        pkg = self.package.manifest
        return json.dumps(
            {
                "name": pkg.name,
                "kind": pkg.kind,
                "version": pkg.version,
                "description": pkg.description,
                "styles": [info.to_dict() for info in self.styles],  # sdk.info.StyleInfo, as listed locally
                "source": pkg.source,
                "input": {"multiple": pkg.input.multiple, "style_image_size": pkg.input.style_image_size},
                "device": str(self.engine.device),
                "half": self.half,
                "runner": self.engine.load(self.package).runner,
            }
        )

    def handle(self, data: list[dict[str, Any]], context: Any) -> list[bytes | str]:
        self.context = context
        if self._is_describe():
            return [self.describe_handle()]
        start = time.perf_counter()
        out: list[bytes | str | None] = [None] * len(data)
        # Parse and decode each item on its own, so a bad one is answered alone...
        groups: dict[tuple[Any, ...], tuple[Styles, list[Member]]] = {}
        headers = [context.get_all_request_header(idx) for idx in range(len(data))]
        for idx, prepared in enumerate(self._codec_pool.map(self._prepare, data, headers)):
            if isinstance(prepared, StylekitError):
                out[idx] = self._error(context, idx, prepared)
                continue
            req, decoded, styles = prepared
            groups.setdefault(_group_key(req, styles), (styles, []))[1].append((idx, req, decoded))
        # ...and run the good ones with equal options together (the engine batches equal sizes on a GPU).
        log.info("batch of %d request(s), %d option group(s)", len(data), len(groups))
        for styles, members in groups.values():
            for idx, body in self._run_group(styles, members):
                if isinstance(body, StylekitError):
                    out[idx] = self._error(context, idx, body)
                else:
                    context.set_response_content_type(idx, imaging.MIME[members[0][1].request.format])
                    out[idx] = body
        context.metrics.add_time("HandlerTime", round((time.perf_counter() - start) * 1000, 2), None, "ms")
        return [body if body is not None else "" for body in out]

    def _prepare(
        self, item: dict[str, Any], headers: Any
    ) -> tuple[Item, imaging.DecodedImage, Styles] | StylekitError:
        try:
            req = parse_request(item, headers)
            decoded = imaging.decode(req.image, self.engine.limits)
            # Both styles are names of this package (an unknown one is the same 404 for each).
            style = self.package.resolve(req.request.style)
            outside = req.request.outside
            return req, decoded, (style, None if outside is None else self.package.resolve(outside))
        except StylekitError as exc:
            return exc
        except Exception:
            # Unforeseen: this item alone gets a generic 500; the traceback goes to the log once.
            log.exception("reading a request failed")
            return StylekitError(INTERNAL_ERROR)

    def _run_group(self, styles: Styles, members: list[Member]) -> list[tuple[int, bytes | StylekitError]]:
        request = members[0][1].request  # equal for the whole group (_group_key)
        style, outside = styles
        try:
            images = self.engine.run_batch([decoded for _, _, decoded in members], style, request, outside)
            encoded = self._codec_pool.map(imaging.encode, images, [request.format] * len(images))
            return [(idx, body) for (idx, _, _), body in zip(members, encoded, strict=True)]
        except InvalidMaskError as exc:
            if len(members) > 1:
                # A mask fits a photo or not by its aspect ratio: one photo of the group may be
                # refused where the others are not, so each is answered for itself.
                return [pair for member in members for pair in self._run_group(styles, [member])]
            return [(members[0][0], exc)]
        except StylekitError as exc:
            # Options are shared by the group, so an option error is every member's error.
            return [(idx, exc) for idx, _, _ in members]
        except Exception:
            if len(members) > 1:
                # Find the one image that breaks (e.g. out of memory) and answer the rest.
                return [pair for member in members for pair in self._run_group(styles, [member])]
            log.exception("stylizing item %d failed", members[0][0])
            return [(members[0][0], StylekitError(INTERNAL_ERROR))]

    @staticmethod
    def _error(context: Any, idx: int, exc: StylekitError) -> str:
        body = exc.to_dict()
        if exc.http_status >= 500:
            # The server's own failure (a broken package, a device): its message can name files
            # here. The log keeps it; the client gets one generic sentence.
            log.error("item %d: %s %s", idx, exc.http_status, exc.message)
            body["message"] = INTERNAL_ERROR
        else:
            log.info("item %d: %s %s", idx, exc.http_status, exc.message)
        context.set_response_status(exc.http_status, exc.code, idx)
        context.set_response_content_type(idx, "application/json")
        return json.dumps(body)


def _group_key(item: Item, styles: Styles) -> tuple[Any, ...]:
    """Requests with equal keys can share one ``run_batch`` call: one style (and outside
    style), one painting, one mask, equal options."""
    req = item.request
    style, outside = styles
    return (style.package.manifest.model_file, style.weights, _digest(req.style_image), req.strength,
            req.preserve_color, req.max_side, req.format, req.scale,
            None if outside is None else (outside.package.manifest.model_file, outside.weights),
            _digest(req.mask))  # fmt: skip


def _digest(part: object) -> str | None:
    """An image part (bytes, as parse_request gives them) by its content."""
    return hashlib.sha256(part).hexdigest() if isinstance(part, bytes) else None
