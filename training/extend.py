"""Fast new styles for a multistyle network: train one new row of its conditional-norm tables.

Dumoulin et al. (2017) show that the styles of a conditional-instance-norm (CIN) network differ
only in the per-layer ``gamma``/``beta`` of their norms; the convolutions are shared. A new
style can therefore be learnt by appending one row to every table and training that row alone,
with everything else frozen: ~1k numbers instead of a whole generator, so it converges in a
few hundred steps on a CPU, and the 26 styles already in the network stay bit-identical.

``stylekit train --extend multistyle26 --style-image P --data D --name N`` trains with the one
training loop (:class:`training.trainer.Trainer`: resume, DDP, signals and checkpoints as for a
new generator), with :class:`NewStyleRow` as the module it trains; ``training.export`` then
writes a new multistyle package (the base network plus one row) whose manifest names the new
sub-style ``N`` at the last index. Only the new sub-style is listed: the base package still
owns the names of its own styles, and a second claim on them would clash in the registry.

This module holds only what is particular to a new row: the module, the base package it grows,
and where its row starts (:class:`NewStyle`).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from sdk.errors import BadOptionError, StylePackageError
from sdk.package import StylePackage, read_package
from sdk.registry import default_registry, looks_like_path
from sdk.settings import user_styles_dir
from training.losses import PerceptualLoss, gram_matrix
from training.pretrained.multistyle import ConvCIN, MultiStyleNet

log = logging.getLogger(__name__)

INIT_MODES = ("closest", "mean")


class NewStyleRow(nn.Module):
    """A frozen copy of a :class:`MultiStyleNet` grown by one style; ``forward(x)`` renders the new style.

    The new ``gamma``/``beta`` rows are the module's only parameters: the copy's tables (whose
    last row is just a placeholder) enter the forward pass as constants with the trainable row
    put in place of that placeholder, so no optimizer can touch the existing styles.
    """

    def __init__(self, base: MultiStyleNet, init_from: int | None) -> None:
        super().__init__()
        if init_from is not None and not 0 <= init_from < base.num_styles:
            raise BadOptionError(f"init_from must be a style index in [0, {base.num_styles}).")
        self.base = copy.deepcopy(base).eval()
        # The new row starts as a copy of style init_from, or the mean of all rows when None.
        self.base.add_styles(1, init_from=init_from)
        self.base.requires_grad_(False)
        self.index = self.base.num_styles - 1
        self.tables = [
            f"{name}.{table}"
            for name, module in self.base.named_modules()
            if isinstance(module, ConvCIN)
            for table in ("gamma", "beta")
        ]
        params = dict(self.base.named_parameters())
        self.rows = nn.ParameterList([nn.Parameter(params[t][-1].detach().clone()) for t in self.tables])

    def grown_tables(self) -> dict[str, Tensor]:
        """Every CIN table: the base's rows, then the trainable one (differentiable in it only)."""
        params = dict(self.base.named_parameters())
        return {
            t: torch.cat([params[t][:-1], row[None]]) for t, row in zip(self.tables, self.rows, strict=True)
        }

    def forward(self, x: Tensor) -> Tensor:
        weights = torch.zeros(x.shape[0], self.index + 1, device=x.device)
        weights[:, self.index] = 1.0
        out: Tensor = functional_call(self.base, self.grown_tables(), (x, weights))
        return out

    @torch.no_grad()
    def extended_network(self) -> MultiStyleNet:
        """A standalone network with ``index + 1`` styles: the base's rows, then the trained one."""
        net = copy.deepcopy(self.base)
        grown = self.grown_tables()
        for name, param in net.named_parameters():
            if name in grown:
                param.copy_(grown[name])
        return net.eval()


def find_multistyle_package(base: str) -> StylePackage:
    """``base``: a package path, a multistyle package name (built-in or user folder) or one of its styles."""
    from sdk.styles import BUILTIN_DIR

    if looks_like_path(base):
        pkg = read_package(base)
    else:
        candidates = [BUILTIN_DIR / f"{base}.json", user_styles_dir() / f"{base}.json"]
        found = next((c for c in candidates if c.is_file()), None)
        pkg = read_package(found) if found is not None else default_registry().get(base).package()
    if pkg.manifest.kind != "multistyle":
        raise BadOptionError(
            f"--extend needs a multistyle network; {pkg.manifest.name!r} is {pkg.manifest.kind}."
        )
    return pkg


def load_multistyle(pkg: StylePackage) -> MultiStyleNet:
    """The eager network with the weights of a multistyle package's TorchScript file."""
    state = dict(pkg.load_module(map_location="cpu").state_dict())
    key = "contract.0.gamma"
    if key not in state:
        raise StylePackageError(
            f"{pkg.model_path} is not a conditional-instance-norm network (no {key!r} in its weights)."
        )
    net = MultiStyleNet(int(state[key].shape[0]))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise StylePackageError(
            f"{pkg.model_path} does not match the multistyle architecture: {exc}"
        ) from exc
    return net.eval()


@torch.no_grad()
def closest_style(net: MultiStyleNet, loss: PerceptualLoss, photos: Tensor) -> tuple[int, float]:
    """The existing style whose renderings of ``photos`` are nearest the target style (style loss)."""
    best = (0, math.inf)
    for s in range(net.num_styles):
        weights = torch.zeros(photos.shape[0], net.num_styles, device=photos.device)
        weights[:, s] = 1.0
        feats = loss.network(net(photos, weights))
        value = sum(
            (
                loss.layer_weights[layer]
                * F.mse_loss(gram_matrix(feats[layer]), target.expand(photos.shape[0], -1, -1))
                for layer, target in loss.style_grams().items()
            ),
            torch.zeros((), device=photos.device),
        )
        if float(value) < best[1]:
            best = (s, float(value))
    return best


@dataclass
class NewStyle:
    """What an ``--extend`` run trains: the base package, its grown copy, where the row started."""

    base: StylePackage
    row: NewStyleRow
    init: str  # "mean" or "closest:<name>"

    @classmethod
    def start(cls, base_name: str, init: str, loss: PerceptualLoss, photos: Tensor | None) -> NewStyle:
        """Grow ``base_name`` by one row, starting as the existing style closest to the painting
        (``init="closest"``, judged by the style loss on ``photos``) or as the mean of all rows.
        ``photos=None`` (a resumed run, whose row comes from the checkpoint) starts at the mean."""
        if init not in INIT_MODES:
            raise BadOptionError(f"--extend-init must be one of {INIT_MODES}, got {init!r}.")
        base = find_multistyle_package(base_name)
        net = load_multistyle(base)
        if init != "closest" or photos is None:
            return cls(base, NewStyleRow(net, None), "mean")
        index, value = closest_style(net.to(photos.device), loss, photos)
        name = {s.index: s.name for s in base.manifest.styles}.get(index, str(index))
        log.info("new row starts from style %d (%s), style loss %.4g", index, name, value)
        return cls(base, NewStyleRow(net.cpu(), index), f"closest:{name}")

    def record(self) -> dict[str, Any]:
        """What the package's training record says of the new row."""
        return {
            "method": "extend: one new conditional-instance-norm row trained, everything else frozen",
            "base": self.base.manifest.name,
            "base_model_sha256": self.base.manifest.files.get(self.base.manifest.model_file, ""),
            "index": self.row.index,
            "init": self.init,
            "trained_parameters": sum(p.numel() for p in self.row.rows.parameters()),
        }


__all__ = [
    "INIT_MODES",
    "NewStyle",
    "NewStyleRow",
    "closest_style",
    "find_multistyle_package",
    "load_multistyle",
]
