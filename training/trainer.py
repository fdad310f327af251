"""The training loop: one style image, a folder of photos, a feed-forward generator.

``Trainer(config).fit()`` trains and checkpoints; ``training.export.export_trained`` then
makes the style package. What the trainer takes care of:

- Adam; mixed precision (bf16 where the hardware has it, CPU included; fp16 + GradScaler on
  older GPUs); ``channels_last`` memory format; the style Grams computed once.
- Atomic checkpoints (``<out>/checkpoints/last.pt``) every ``checkpoint_every`` steps and at the
  end. ``resume`` restores step, epoch position, generator, optimizer(s), scaler and RNG states;
  the data order and crops are a function of (seed, epoch, position), so a resumed run is
  bit-for-bit the run that was never interrupted (on the same device).
- SIGINT/SIGTERM: the current step finishes, a checkpoint is written, ``fit`` returns with
  ``interrupted=True``. A NaN/inf loss raises :class:`TrainingError` before the optimizer
  touches the weights, so the last checkpoint on disk is a good one.
- DDP under ``torchrun`` (nccl on GPU, gloo on CPU): each rank trains on its shard; only rank 0
  logs, writes checkpoints, TensorBoard and the style package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from sdk import imaging
from sdk.devices import cpu_native_bf16, resolve_device
from sdk.errors import BadOptionError, TrainingError
from training.checkpoints import CHECKPOINT_FORMAT, atomic_copy, atomic_torch_save, load_checkpoint
from training.config import TrainConfig
from training.data import ImageFolderDataset, ResumableSampler, collate, find_images, load_image
from training.extend import NewStyle
from training.generator import TransformerNet
from training.loss_networks import build_loss_network, network_class
from training.losses import PatchDiscriminator, PerceptualLoss, lsgan_loss, random_patches
from training.perceptual import PerceptualNetwork
from training.recipes import resolve_recipe
from training.teacher import ArbitraryTeacher

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 256


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> DistInfo:
        """torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; a plain run has none of them."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")), world)


@dataclass
class TrainResult:
    steps: int
    epoch: int
    losses: dict[str, float]
    images_per_second: float
    checkpoint: Path | None
    interrupted: bool = False
    stop_signal: int | None = None  # the signal that interrupted the run
    skipped_files: list[str] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)  # logged losses, with "step"


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``mode`` on ``device`` (None = full float32)."""
    if mode == "off":
        return None
    if mode == "fp16":
        if device.type == "cpu":
            raise BadOptionError("--amp fp16 is for GPUs; use bf16 or off on a CPU.")
        return torch.float16
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if mode == "bf16" and not bf16:
            raise BadOptionError("--amp bf16: this GPU has no bfloat16 support; use fp16.")
        return torch.bfloat16 if bf16 else torch.float16
    if device.type == "cpu":
        # Native bf16 (AVX-512-BF16 / AMX) makes oneDNN convolutions faster; without it bf16 is
        # emulated and slower than float32, so "auto" stays in float32 there.
        native = cpu_native_bf16()
        if mode == "bf16" or native:
            return torch.bfloat16
        return None
    return torch.bfloat16 if mode == "bf16" else None  # mps: autocast only when asked


def _rng_state(device: torch.device) -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        # Plain Python values so the checkpoint loads with weights_only=True.
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],  # type: ignore[index]
        "python": random.getstate(),
    }


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def style_thumbnail(path: Path) -> bytes:
    decoded = imaging.resize_max_side(imaging.decode(path), THUMBNAIL_SIDE)
    return imaging.encode(imaging.finish(decoded.rgb, decoded), "JPEG", quality=90)


def build_perceptual_loss(
    cfg: TrainConfig,
    style_image: torch.Tensor,
    device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> PerceptualLoss:
    """The configured loss network (cut after the deepest layer in use) and the weighted loss on it.

    Options left unset take the loss network's own defaults (layers and content/style/TV weights).
    """
    cls = network_class(cfg.loss_network)
    content_layers = cfg.content_layers or cls.default_content_layers
    style_layers = cfg.style_layers or cls.default_style_layers
    network = build_loss_network(
        cfg.loss_network,
        weights=cfg.vgg_weights,
        layers=list(dict.fromkeys((*content_layers, *style_layers))),
        device=device,
        download=cfg.download,
    ).to(memory_format=memory_format)
    dc, ds, dtv = cls.default_loss_weights
    return PerceptualLoss(
        network,
        style_image,
        content_layers=content_layers,
        style_layers=style_layers,
        content_weight=dc if cfg.content_weight is None else cfg.content_weight,
        style_weight=ds if cfg.style_weight is None else cfg.style_weight,
        tv_weight=dtv if cfg.tv_weight is None else cfg.tv_weight,
        style_layer_weights=dict(zip(style_layers, cfg.style_layer_weights or (), strict=False)),
    )


class Trainer:
    """Trains one style. Build it with a :class:`TrainConfig`, then call :meth:`fit`."""

    def __init__(self, config: TrainConfig) -> None:
        self.dist = DistInfo.from_env()
        self.device = resolve_device(config.device, self.dist.local_rank)
        # "auto" loss network and unset lr made concrete; checkpoints record the result.
        config = self.config = resolve_recipe(config, self.device)
        self._owns_process_group = False
        if self.dist.world_size > 1 and not dist.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            dist.init_process_group(backend=backend)
            self._owns_process_group = True
        self.amp_dtype = resolve_amp(config.amp, self.device)
        self.memory_format = torch.channels_last if config.channels_last else torch.contiguous_format

        torch.manual_seed(config.seed)
        random.seed(config.seed)
        np.random.seed(config.seed)

        self.files = find_images(config.data)
        if not config.style_image.is_file():
            raise TrainingError(f"Style image {config.style_image} does not exist.")
        self.network, self.loss = self._build_loss()
        self.sampler = ResumableSampler(
            len(self.files),
            seed=config.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            batch_size=config.batch_size,
        )
        self.steps_per_epoch = self.sampler.batches
        self.total_steps = config.steps or (config.epochs or 2) * self.steps_per_epoch
        workers = config.num_workers
        if workers is None:
            workers = 4 if self.device.type == "cuda" else 0
        self.loader = DataLoader(
            ImageFolderDataset(self.files, config.image_size, random_crop=config.random_crop),
            batch_size=config.batch_size,
            sampler=self.sampler,
            num_workers=workers,
            collate_fn=collate,
            pin_memory=self.device.type == "cuda",
            persistent_workers=workers > 0,
        )

        # What is trained: a new generator, or (--extend) one new row of a multistyle network.
        self.extension: NewStyle | None = None
        if config.extend is not None:
            photos = None if config.resume else self._first_photos()
            self.extension = NewStyle.start(config.extend, config.extend_init, self.loss, photos)
            module: nn.Module = self.extension.row
        else:
            module = TransformerNet(config.width)
        self.generator = module.to(self.device)
        self.generator.to(memory_format=self.memory_format)
        self.model: nn.Module = self._wrap(self.generator)
        trainable = [p for p in self.generator.parameters() if p.requires_grad]
        assert config.lr is not None  # resolve_recipe sets it
        self.optimizer = torch.optim.Adam(trainable, lr=config.lr)
        # Loss scaling only matters for fp16; a disabled scaler is a no-op for bf16/fp32.
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        self.disc_scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)

        self.discriminator: PatchDiscriminator | None = None
        self.disc_model: nn.Module | None = None
        self.disc_optimizer: torch.optim.Optimizer | None = None
        if config.adversarial_weight > 0:
            self.discriminator = PatchDiscriminator().to(self.device)
            self.discriminator.to(memory_format=self.memory_format)
            self.disc_model = self._wrap(self.discriminator)
            # Adam with beta1 0.5, the usual choice for GAN critics (momentum destabilises them).
            self.disc_optimizer = torch.optim.Adam(
                self.discriminator.parameters(), lr=config.lr, betas=(0.5, 0.999)
            )
            # Real patches come from the style image at training scale (short side >= crop).
            self.style_full = self._style_tensor(short_side=config.image_size)

        self.teacher: ArbitraryTeacher | None = None
        if config.distill_weight > 0:
            self.teacher = ArbitraryTeacher(config.style_image, self.device)

        self._eval_set: list[tuple[str, np.ndarray]] | None = None  # held-out photos, loaded once
        self.best: dict[str, float] | None = None  # --keep-best: the best checkpoint's step and scores
        self.eval_history: list[dict[str, float]] = []

        self.step = 0
        self.epoch = 0
        self.epoch_position = 0  # samples of the current epoch this rank has trained on
        self.skipped: set[str] = set()
        self.losses: dict[str, float] = {}
        self._thumbnail = style_thumbnail(config.style_image) if self.dist.is_main else b""
        self._stop_signal: int | None = None
        self._writer: Any = None
        self.history: list[dict[str, float]] = []
        self.first_losses: dict[str, float] = {}  # at the run's first step, before its update
        self._last_batch: tuple[torch.Tensor, torch.Tensor] | None = None  # for TensorBoard samples

        if config.resume:
            path = config.resume if isinstance(config.resume, Path) else config.checkpoint_path
            self._restore(load_checkpoint(path), path)

    # ----- construction helpers -------------------------------------------------------------

    def _build_loss(self) -> tuple[PerceptualNetwork, PerceptualLoss]:
        cfg = self.config
        style = self._style_tensor(long_side=cfg.style_size or cfg.image_size)
        loss = build_perceptual_loss(cfg, style, self.device, self.memory_format)
        network = loss.network
        content_layers, style_layers = loss.content_layers, loss.style_layers
        if self.dist.is_main:
            log.info(
                "loss network %s (%s); content %s x %g, style %s x %g, tv x %g",
                network.name, network.weights_source, content_layers, loss.content_weight,
                style_layers, loss.style_weight, loss.tv_weight,
            )  # fmt: skip
        return network, loss

    def _style_tensor(self, *, long_side: int | None = None, short_side: int | None = None) -> torch.Tensor:
        image = load_image(self.config.style_image)
        _, _, h, w = image.shape
        scale = long_side / max(h, w) if long_side else (short_side or min(h, w)) / min(h, w)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        image = torch.nn.functional.interpolate(
            image, size=size, mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0, 1)
        return image.to(self.device).contiguous(memory_format=self.memory_format)

    def _first_photos(self) -> torch.Tensor:
        """The first batch of epoch 0 (what the closest-style start of --extend judges on)."""
        self.sampler.set_epoch(0)
        images: torch.Tensor = next(iter(self.loader))[0]
        return images.to(self.device)

    def _wrap(self, module: nn.Module) -> nn.Module:
        if self.dist.world_size == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    # ----- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.to_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "epoch_position": self.epoch_position,
            "generator": self.generator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "discriminator": self.discriminator.state_dict() if self.discriminator else None,
            "disc_optimizer": self.disc_optimizer.state_dict() if self.disc_optimizer else None,
            "disc_scaler": self.disc_scaler.state_dict() if self.disc_optimizer else None,
            "rng": _rng_state(self.device),
            "losses": dict(self.losses),
            "first_losses": dict(self.first_losses),
            "best": dict(self.best) if self.best is not None else None,
            "skipped_files": sorted(self.skipped),
            "width": self.config.width,
            "extend": self.extension.record() if self.extension is not None else None,
            "style_source": self.config.style_image.name,
            "style_thumbnail": self._thumbnail,
            "loss_network": {
                "name": self.network.name,
                "weights": self.network.weights_source,
                "pretrained": self.network.pretrained,
            },
        }

    def save_checkpoint(self) -> Path | None:
        if not self.dist.is_main:
            return None
        path = self.config.checkpoint_path
        atomic_torch_save(self.state_dict(), path)
        log.info("checkpoint at step %d: %s", self.step, path)
        return path

    def _checkpoint(self) -> None:
        """Score the held-out photos (--eval-photos), save last.pt, and best.pt when it improved."""
        improved = self._evaluate()
        self.save_checkpoint()
        self._log_images()
        if improved and self.dist.is_main:
            atomic_copy(self.config.checkpoint_path, self.config.best_checkpoint_path)
            log.info("best checkpoint so far (quality %.4f): %s", self.best and self.best["quality"],
                     self.config.best_checkpoint_path)  # fmt: skip

    def _evaluate(self) -> bool:
        """``training.evaluate`` scores of the generator now on --eval-photos; True if the best yet."""
        cfg = self.config
        if cfg.eval_photos is None or not self.dist.is_main:
            return False
        from training import evaluate as ev

        if self._eval_set is None:
            files = [cfg.eval_photos] if cfg.eval_photos.is_file() else find_images(cfg.eval_photos)
            # Sides cut to a multiple of 4, which every generator here takes.
            pictures = [ev.work_picture(f) for f in files]
            self._eval_set = [(f.name, p[: p.shape[0] // 4 * 4, : p.shape[1] // 4 * 4]) for f, p in
                              zip(files, pictures, strict=True)]  # fmt: skip
        was_training = self.generator.training
        self.generator.eval()
        outputs = []
        with torch.no_grad():
            for _, rgb in self._eval_set:
                x = imaging.to_tensor(rgb).to(self.device).contiguous(memory_format=self.memory_format)
                outputs.append(imaging.to_uint8(self.generator(x).float().cpu()))  # clamps and rounds
        self.generator.train(was_training)
        labels = [name for name, _ in self._eval_set]
        mean = ev.evaluate([p for _, p in self._eval_set], outputs, cfg.style_image, labels).mean
        scores = {name: getattr(mean, name) for name in ev.Scores.names()} | {"quality": mean.quality}
        self.eval_history.append({"step": float(self.step), **scores})
        log.info("eval at step %d: %s", self.step, ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        if self._writer is not None:
            for key, value in scores.items():
                self._writer.add_scalar(f"eval/{key}", value, self.step)
        if not cfg.keep_best or (self.best is not None and scores["quality"] <= self.best["quality"]):
            return False
        self.best = {"step": float(self.step), **scores}
        return True

    def _restore(self, ckpt: dict[str, Any], path: Path) -> None:
        mismatches = self.config.resume_mismatches(ckpt["config"])
        if mismatches:
            detail = ", ".join(f"{k}={ckpt['config'][k]!r}" for k in mismatches)
            raise BadOptionError(
                f"--resume: {path} was trained with different settings ({detail}); "
                "use the same options or start a new run folder."
            )
        self.generator.load_state_dict(ckpt["generator"])
        if self.extension is not None and ckpt.get("extend"):
            self.extension.init = str(ckpt["extend"]["init"])  # the row came from the checkpoint
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.discriminator is not None and self.disc_optimizer is not None:
            self.discriminator.load_state_dict(ckpt["discriminator"])
            self.disc_optimizer.load_state_dict(ckpt["disc_optimizer"])
            self.disc_scaler.load_state_dict(ckpt["disc_scaler"])
        _set_rng_state(ckpt["rng"], self.device)
        self.step = int(ckpt["step"])
        self.epoch = int(ckpt["epoch"])
        self.epoch_position = int(ckpt["epoch_position"])
        self.losses = dict(ckpt["losses"])
        self.first_losses = dict(ckpt.get("first_losses") or {})  # older checkpoints have none
        self.best = dict(ckpt["best"]) if ckpt.get("best") else None
        self.skipped = set(ckpt["skipped_files"])
        if self.dist.is_main:
            log.info("resumed from %s at step %d (epoch %d)", path, self.step, self.epoch)

    # ----- signals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGINT/SIGTERM ask the loop to stop after the current step (and checkpoint)."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def request_stop(signum: int, frame: FrameType | None) -> None:
            self._stop_signal = signum

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # ----- training -------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _agree(self, nonfinite: bool) -> tuple[bool, bool]:
        """(any rank saw a non-finite loss, any rank was asked to stop): every rank acts alike."""
        stop = self._stop_signal is not None
        if self.dist.world_size == 1:
            return nonfinite, stop
        flags = torch.tensor([float(nonfinite), float(stop)], device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0]), bool(flags[1])

    def train_step(self, images: torch.Tensor) -> dict[str, torch.Tensor] | None:
        """One optimizer step. None when a stop was requested (nothing was changed)."""
        cfg = self.config
        images = images.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)
        # The teacher is a finished network: it runs as it was exported, outside autocast.
        targets = self.teacher(images) if self.teacher is not None else None
        with self._autocast():
            generated = self.model(images)
            losses = self.loss(generated, images)
            if targets is not None:
                losses["distill"] = F.l1_loss(generated.float(), targets)
                losses["total"] = losses["total"] + cfg.distill_weight * losses["distill"]
            if self.disc_model is not None:
                losses["adversarial"] = lsgan_loss(self.disc_model(generated), real=True)
                losses["total"] = losses["total"] + cfg.adversarial_weight * losses["adversarial"]
        nonfinite, stop = self._agree(not bool(torch.isfinite(losses["total"]).item()))
        if nonfinite:
            bad = {k: float(v.detach()) for k, v in losses.items()}
            last = self.config.checkpoint_path
            where = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint yet"
            raise TrainingError(
                f"Loss became non-finite at step {self.step + 1} ({bad}); stopped before updating "
                f"the weights, {where}. Lower --lr or the loss weights."
            )
        if stop:
            return None
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.disc_model is not None:
            losses["discriminator"] = self._discriminator_step(generated.detach())
        self._last_batch = (images, generated.detach())
        out: dict[str, torch.Tensor] = losses
        return out

    def _discriminator_step(self, fake: torch.Tensor) -> torch.Tensor:
        assert self.disc_model is not None and self.disc_optimizer is not None
        n, _, h, w = fake.shape
        _, _, sh, sw = self.style_full.shape
        size = min(h, w, sh, sw) // 2
        # Patch positions depend on (seed, step, rank) only: nothing to carry across a resume.
        g = torch.Generator().manual_seed((self.config.seed * 1_000_003 + self.step) * 31 + self.dist.rank)
        real = random_patches(self.style_full, n, size, g)
        fake_patches = torch.cat([random_patches(fake[i : i + 1], 1, size, g) for i in range(n)])
        with self._autocast():
            scores = self.disc_model(torch.cat([real, fake_patches]))
            loss = 0.5 * (lsgan_loss(scores[:n], real=True) + lsgan_loss(scores[n:], real=False))
        self.disc_optimizer.zero_grad(set_to_none=True)
        self.disc_scaler.scale(loss).backward()  # type: ignore[no-untyped-call]
        self.disc_scaler.step(self.disc_optimizer)
        self.disc_scaler.update()
        return loss.detach()

    def fit(self) -> TrainResult:
        """Train to ``total_steps``; checkpoint; export (rank 0). Returns what happened."""
        from tqdm import tqdm

        cfg = self.config
        main = self.dist.is_main
        if main and cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(cfg.run_dir / "tensorboard"))
        # A bar only on a terminal: in a log file its carriage returns are noise; there the
        # step's log line (_log) is the progress.
        show_bar = main and cfg.progress and sys.stderr.isatty()
        bar = tqdm(
            total=self.total_steps, initial=self.step, disable=not show_bar,
            desc=cfg.name, unit="step", dynamic_ncols=True,
        )  # fmt: skip
        self.generator.train()
        images_seen = 0
        started = time.perf_counter()
        window_start, window_images = started, 0
        interrupted = False
        last_saved = -1
        try:
            with self._signals():
                while self.step < self.total_steps and not interrupted:
                    self.sampler.set_epoch(self.epoch, start=self.epoch_position)
                    for images, skipped in self.loader:
                        self._note_skipped(skipped)
                        losses = self.train_step(images)
                        if losses is None:
                            interrupted = True
                            break
                        self.step += 1
                        if not self.first_losses:
                            self.first_losses = {k: float(v.detach()) for k, v in losses.items()}
                        self.epoch_position += images.shape[0]
                        if self.epoch_position >= self.steps_per_epoch * cfg.batch_size:
                            self.epoch, self.epoch_position = self.epoch + 1, 0
                        batch_images = images.shape[0] * self.dist.world_size
                        images_seen += batch_images
                        window_images += batch_images
                        bar.update(1)
                        if self.step % cfg.log_every == 0 or self.step == self.total_steps:
                            now = time.perf_counter()
                            rate = window_images / max(now - window_start, 1e-9)
                            window_start, window_images = now, 0
                            self._log(losses, rate, bar)
                        if self.step % cfg.checkpoint_every == 0:
                            self._checkpoint()
                            last_saved = self.step
                        if self.step >= self.total_steps:
                            break
            if interrupted and main:
                name = signal.Signals(self._stop_signal).name if self._stop_signal else "stop"
                log.warning("%s received: saving a checkpoint at step %d and stopping", name, self.step)
            if last_saved != self.step:
                self._checkpoint()
            checkpoint = cfg.checkpoint_path
        finally:
            bar.close()
            if self._writer is not None:
                self._writer.close()
        elapsed = time.perf_counter() - started
        result = TrainResult(
            steps=self.step,
            epoch=self.epoch,
            losses=dict(self.losses),
            images_per_second=images_seen / elapsed if elapsed > 0 else 0.0,
            checkpoint=checkpoint if main else None,
            interrupted=interrupted,
            stop_signal=self._stop_signal,
            skipped_files=sorted(self.skipped),
            history=list(self.history),
        )
        if self.skipped and main:
            log.warning("skipped %d unreadable training image(s)", len(self.skipped))
        # Exporting is the caller's step (training.export.export_trained): a trainer trains.
        return result

    def close(self) -> None:
        """Leave the process group this trainer created (torchrun runs)."""
        if self._owns_process_group and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
            self._owns_process_group = False

    def _note_skipped(self, skipped: list[str]) -> None:
        new = set(skipped) - self.skipped
        self.skipped |= new

    def _log(self, losses: dict[str, torch.Tensor], rate: float, bar: Any) -> None:
        self.losses = {k: float(v.detach()) for k, v in losses.items()}
        self.losses["images_per_second"] = rate
        self.history.append({"step": float(self.step), **self.losses})
        if not self.dist.is_main:
            return
        bar.set_postfix(
            total=f"{self.losses['total']:.4g}", content=f"{self.losses['content']:.3g}",
            style=f"{self.losses['style']:.3g}", img_s=f"{rate:.2f}",
        )  # fmt: skip
        loss = self.losses
        log.info("step %d/%d: total %.4g, content %.3g, style %.3g, %.2f images/s", self.step,
                 self.total_steps, loss["total"], loss["content"], loss["style"], rate)  # fmt: skip
        if self._writer is not None:
            for key, value in self.losses.items():
                self._writer.add_scalar(f"train/{key}", value, self.step)

    def _log_images(self) -> None:
        if self._writer is None or self._last_batch is None:
            return
        photos, generated = self._last_batch
        grid = torch.cat([photos[:2], generated[:2]]).float().clamp(0, 1).cpu()
        self._writer.add_images("samples/photo_then_result", grid, self.step)


__all__ = [
    "DistInfo",
    "TrainResult",
    "Trainer",
    "build_perceptual_loss",
]
