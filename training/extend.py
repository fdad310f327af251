"""Fast new styles for a multistyle network: train one new row of its conditional-norm tables.

Dumoulin et al. (2017) show that the styles of a conditional-instance-norm (CIN) network differ
only in the per-layer ``gamma``/``beta`` of their norms; the convolutions are shared. A new
style can therefore be learnt by appending one row to every table and training that row alone,
with everything else frozen: ~1k numbers instead of a whole generator, so it converges in a
few hundred steps on a CPU, and the 26 styles already in the network stay bit-identical.

``stylekit train --extend multistyle26 --style-image P --data D --name N`` calls
:func:`run_extend`; the result is a new multistyle package (the base network plus one row)
whose manifest names the new sub-style ``N`` at the last index. Only the new sub-style is
listed: the base package still owns the names of its own styles, and a second claim on them
would clash in the registry. The package goes into the run folder and ``$STYLEKIT_HOME/styles``.

The losses, loss networks, data pipeline and device/precision choice are the trainer's
(:mod:`training.losses`, :mod:`training.loss_networks`, :mod:`training.data`,
:mod:`training.trainer`); only the loop differs, because the trainable parameters live inside a
frozen network that takes style weights.
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call
from torch.utils.data import DataLoader

from sdk.devices import resolve_device
from sdk.errors import BadOptionError, StylePackageError, TrainingError
from sdk.package import Manifest, StylePackage, SubStyle, quiet_torchscript, read_package, write_package
from sdk.registry import default_registry, looks_like_path
from sdk.settings import user_styles_dir
from training.config import TrainConfig
from training.data import ImageFolderDataset, ResumableSampler, collate, find_images, load_image
from training.losses import PerceptualLoss, gram_matrix
from training.pretrained.multistyle import ConvCIN, MultiStyleNet
from training.trainer import build_perceptual_loss, resolve_amp, style_thumbnail

log = logging.getLogger(__name__)

INIT_MODES = ("closest", "mean")
# Largest |eager - reloaded TorchScript| accepted when the exported package is verified.
VERIFY_TOLERANCE = 1e-4


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


@dataclass
class ExtendResult:
    steps: int
    initial_losses: dict[str, float]  # at step 1, before the first update
    losses: dict[str, float]  # at the last step
    seconds: float
    index: int  # the new style's row in style_weights
    init: str  # "mean" or "closest:<name>"
    package: StylePackage
    installed: StylePackage | None


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


def _style_names(pkg: StylePackage) -> dict[int, str]:
    return {s.index: s.name for s in pkg.manifest.styles}


def _batches(config: TrainConfig, files: list[Path]) -> Any:
    """Endless (photos, skipped files) batches, reshuffled every epoch, the trainer's data pipeline."""
    sampler = ResumableSampler(len(files), seed=config.seed, batch_size=config.batch_size)
    loader = DataLoader(
        ImageFolderDataset(files, config.image_size, random_crop=config.random_crop),
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.num_workers or 0,
        collate_fn=collate,
    )
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def to_torchscript(net: MultiStyleNet) -> torch.jit.ScriptModule:
    """Script ``net``, reload it and check it reproduces the eager network on a fresh input."""
    model = copy.deepcopy(net).float().cpu().eval()
    buf = io.BytesIO()
    # TorchScript is the package format every consumer loads; torch's deprecation warning is noise here.
    with quiet_torchscript():
        torch.jit.save(torch.jit.script(model), buf)
        buf.seek(0)
        reloaded: torch.jit.ScriptModule = torch.jit.load(buf, map_location="cpu")  # type: ignore[no-untyped-call]
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 3, 48, 68, generator=g)
    weights = torch.softmax(torch.randn(2, model.num_styles, generator=g), dim=1)
    with torch.no_grad():
        diff = (reloaded(x, weights) - model(x, weights)).abs().max().item()
    if diff > VERIFY_TOLERANCE:
        raise StylePackageError(
            f"Exported TorchScript does not reproduce the eager network (max diff {diff:.3g})."
        )
    return reloaded


def export_extended(
    net: MultiStyleNet,
    base: StylePackage,
    config: TrainConfig,
    training: dict[str, Any],
) -> tuple[StylePackage, StylePackage | None]:
    """Write the extended network as a multistyle package into the run folder (and the user folder)."""
    module = to_torchscript(net)
    name = config.name
    thumb = f"{name}.style.jpg"
    extra = {thumb: style_thumbnail(config.style_image)}
    index = net.num_styles - 1

    def manifest() -> Manifest:
        return Manifest(
            name=name,
            kind="multistyle",
            model_file=f"{name}.pt",
            description=(
                f"{base.manifest.name} with one style added (row {index}), trained here from "
                f"{config.style_image.name}."
            ),
            input=base.manifest.input,
            styles=(
                SubStyle(index=index, name=name, description=f"Trained here from {config.style_image.name}."),
            ),
            source={
                "file": config.style_image.name,
                "base": base.manifest.name,
                "base_source": base.manifest.source,
            },
            training={**training, "thumbnail": thumb},
        )

    with quiet_torchscript():
        package = write_package(module, config.run_dir, manifest(), extra)
        installed = write_package(module, user_styles_dir(), manifest(), extra) if config.install else None
    if installed is not None:
        log.info("installed style %r into %s", name, installed.root)
    return package, installed


def run_extend(config: TrainConfig, base: str, *, init: str = "closest") -> ExtendResult:
    """Add the style of ``config.style_image`` to the multistyle network ``base`` as ``config.name``.

    Uses from ``config``: data, style image, name, out, steps/epochs, batch and image size, style
    size, loss network and weights/layers, lr, seed, device, amp, install. ``init``: start the new
    row from the mean of all rows, or from the existing style closest to the painting.
    """
    if init not in INIT_MODES:
        raise BadOptionError(f"init must be one of {INIT_MODES}, got {init!r}.")
    if config.resume:
        raise BadOptionError("--resume is not supported with --extend (a run takes minutes, not hours).")
    if config.adversarial_weight > 0:
        raise BadOptionError("--adversarial-weight is not supported with --extend.")
    if not config.style_image.is_file():
        raise TrainingError(f"Style image {config.style_image} does not exist.")
    device = resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    torch.manual_seed(config.seed)
    files = find_images(config.data)
    base_pkg = find_multistyle_package(base)
    net = load_multistyle(base_pkg).to(device)
    style = load_image(config.style_image, config.style_size or config.image_size).to(device)
    loss = build_perceptual_loss(config, style, device)
    batches = _batches(config, files)

    names = _style_names(base_pkg)
    init_from: int | None = None
    init_label = "mean"
    if init == "closest":
        photos, _ = next(batches)
        init_from, value = closest_style(net, loss, photos.to(device))
        init_label = f"closest:{names.get(init_from, str(init_from))}"
        log.info("new row starts from style %d (%s), style loss %.4g", init_from, init_label, value)
    model = NewStyleRow(net, init_from).to(device)
    optimizer = torch.optim.Adam(model.rows.parameters(), lr=config.lr)
    steps_per_epoch = len(files) // config.batch_size
    total = config.steps or (config.epochs or 2) * max(1, steps_per_epoch)
    autocast = (
        (lambda: torch.autocast(device.type, dtype=amp_dtype))
        if amp_dtype is not None
        else contextlib.nullcontext
    )

    initial: dict[str, float] = {}
    losses: dict[str, float] = {}
    skipped: set[str] = set()
    started = time.perf_counter()
    for step in range(1, total + 1):
        photos, bad = next(batches)
        skipped.update(bad)
        photos = photos.to(device)
        with autocast():
            values = loss(model(photos), photos)
        current = {k: float(v.detach()) for k, v in values.items()}
        if not math.isfinite(current["total"]):
            raise TrainingError(
                f"Loss became non-finite at step {step} ({current}); lower --lr or the loss weights."
            )
        if step == 1:
            initial = current
        optimizer.zero_grad(set_to_none=True)
        values["total"].backward()
        optimizer.step()
        if step % config.log_every == 0 or step == total:
            losses = current
            log.info(
                "extend %s step %d/%d: %s",
                config.name,
                step,
                total,
                {k: round(v, 6) for k, v in losses.items()},
            )
    seconds = time.perf_counter() - started
    if skipped:
        log.warning("skipped %d unreadable training image(s)", len(skipped))

    extended = model.extended_network().cpu()
    training = {
        "method": "extend: one new conditional-instance-norm row trained, everything else frozen",
        "base": base_pkg.manifest.name,
        "init": init_label,
        "config": config.to_dict(),
        "steps": total,
        "seconds": round(seconds, 1),
        "initial_losses": initial,
        "final_losses": losses,
        "loss_network": {"name": loss.network.name, "weights": loss.network.weights_source},
        "trained_parameters": sum(p.numel() for p in model.rows.parameters()),
        "skipped_files": len(skipped),
    }
    package, installed = export_extended(extended, base_pkg, config, training)
    return ExtendResult(total, initial, losses, seconds, model.index, init_label, package, installed)


__all__ = [
    "INIT_MODES",
    "ExtendResult",
    "NewStyleRow",
    "closest_style",
    "export_extended",
    "find_multistyle_package",
    "load_multistyle",
    "run_extend",
]
