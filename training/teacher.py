"""Distillation: the built-in ``arbitrary`` network as a teacher for a new style.

The arbitrary network (Ghiasi et al. 2017) paints any photo in any painting's style in one pass,
and it was trained on far more than the few photos and CPU minutes a user has. Its output for a
training photo is therefore a good *target picture*: ``--distill-weight W`` adds
``W * L1(generated, teacher(photo))`` to the perceptual loss, so a generator or a new multistyle
row learns from a picture, not only from statistics. The perceptual loss still pulls toward the
painting itself, so the student is not bound to the teacher's look.

Targets are computed without autograd and kept per distinct training crop (keyed by the crop's
pixels): on a small photo set seen for many epochs each target is computed once. The cache is
bounded (:data:`CACHE_BYTES`); past it, targets are computed per step.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from pathlib import Path

import torch
from torch import Tensor

from sdk import imaging

#: Most bytes of teacher targets kept between steps.
CACHE_BYTES = 512 * 1024 * 1024


class ArbitraryTeacher:
    """``teacher(images)``: the arbitrary network's rendering of ``images`` ([N, 3, H, W] in [0, 1])."""

    def __init__(self, painting: Path, device: torch.device) -> None:
        from sdk import api
        from sdk.engine import ArbitraryModel
        from sdk.registry import default_registry

        engine = api.engine(str(device), "torchscript")
        model = engine.load(default_registry().resolve("arbitrary").package)
        assert isinstance(model, ArbitraryModel)
        self._run = model.bind(model.style_vector(imaging.decode(painting)))
        self.device = device
        self._cache: OrderedDict[bytes, Tensor] = OrderedDict()
        self._bytes = 0
        self.hits = self.misses = 0

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        batch = images.detach().to("cpu", torch.float32).contiguous()
        keys = [hashlib.blake2b(x.numpy().tobytes(), digest_size=16).digest() for x in batch]
        todo = [i for i, k in enumerate(keys) if k not in self._cache]
        fresh: dict[int, Tensor] = {}
        if todo:
            # Only the crops not seen yet run, as one batch (a training batch shares one size).
            out = self._run(batch[todo]).clamp_(0.0, 1.0)
            for j, i in enumerate(todo):
                fresh[i] = out[j]
                self._remember(keys[i], out[j])
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        rows = [fresh[i] if i in fresh else self._cache[k] for i, k in enumerate(keys)]
        return torch.stack(rows).to(self.device, non_blocking=True)

    def _remember(self, key: bytes, target: Tensor) -> None:
        size = target.numel() * target.element_size()
        if size > CACHE_BYTES:
            return
        self._cache[key] = target
        self._bytes += size
        while self._bytes > CACHE_BYTES:
            _, old = self._cache.popitem(last=False)
            self._bytes -= old.numel() * old.element_size()


__all__ = ["CACHE_BYTES", "ArbitraryTeacher"]
