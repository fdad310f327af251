"""``TrainConfig``: every option of ``stylekit train`` as one typed object.

The CLI builds it from flags; Python users build it directly. Weight options left at ``None``
take the loss network's defaults (``PerceptualNetwork.default_loss_weights`` and its default
layers), because sensible magnitudes differ between VGG and MobileNet features.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdk.errors import BadOptionError
from sdk.registry import check_style_name

AMP_MODES = ("auto", "bf16", "fp16", "off")

# Options that do not change the numbers a run computes: they may differ on --resume.
RESUME_FREE_FIELDS = frozenset(
    {
        "out", "epochs", "steps", "device", "checkpoint_every", "log_every", "num_workers",
        "resume", "install", "tensorboard", "progress", "download", "vgg_weights", "data", "style_image",
        "extend_init", "eval_photos", "keep_best",
    }
)  # fmt: skip


@dataclass
class TrainConfig:
    style_image: Path
    data: Path
    name: str
    out: Path | None = None  # run folder; default runs/<name>
    epochs: int | None = None  # default 2 when steps is None too
    steps: int | None = None  # total optimizer steps; wins over epochs
    batch_size: int = 4
    image_size: int = 256
    style_size: int | None = None  # long side of the style image; default image_size
    content_weight: float | None = None
    style_weight: float | None = None
    tv_weight: float | None = None
    content_layers: tuple[str, ...] | None = None
    style_layers: tuple[str, ...] | None = None
    style_layer_weights: tuple[float, ...] | None = None  # one per style layer; default all 1
    lr: float | None = None  # default 1e-3, 1e-2 with --extend (training.recipes)
    loss_network: str = "auto"  # vgg19 on a GPU or with the weights here, else the offline recipe
    vgg_weights: Path | None = None
    width: float = 1.0
    adversarial_weight: float = 0.0
    # L1 toward the built-in arbitrary network's rendering of each photo (training.teacher).
    distill_weight: float = 0.0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto: bf16 on CPUs with native bf16 and on bf16 GPUs, else fp16 on GPU
    channels_last: bool = True
    random_crop: bool = True
    checkpoint_every: int = 500
    log_every: int = 20
    num_workers: int | None = None  # default: 0 on CPU (workers would steal compute cores), 4 on GPU
    resume: bool | Path = False  # True: <out>/checkpoints/last.pt
    install: bool = True  # also install the style into $STYLEKIT_HOME/styles
    tensorboard: bool = True
    progress: bool = True
    download: bool = True  # allow torchvision to download VGG weights into its cache
    # Train one new row of this multistyle network (name or package path) instead of a generator.
    extend: str | None = None
    extend_init: str = "closest"  # where the new row starts: the closest style, or the mean
    # Held-out photos (a folder or one file) scored by training.evaluate at every checkpoint.
    eval_photos: Path | None = None
    keep_best: bool = False  # also keep checkpoints/best.pt, the checkpoint with the best quality

    def __post_init__(self) -> None:
        self.style_image = Path(self.style_image)
        self.data = Path(self.data)
        if self.out is not None:
            self.out = Path(self.out)
        if self.vgg_weights is not None:
            self.vgg_weights = Path(self.vgg_weights)
        if self.eval_photos is not None:
            self.eval_photos = Path(self.eval_photos)
        if not isinstance(self.resume, bool):
            self.resume = Path(self.resume)
        for name in ("content_layers", "style_layers", "style_layer_weights"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, tuple(value))
        self.validate()

    def validate(self) -> None:
        check_style_name(self.name)
        positive: dict[str, float] = {"batch_size": self.batch_size, "image_size": self.image_size,
                    "checkpoint_every": self.checkpoint_every, "log_every": self.log_every}  # fmt: skip
        if self.lr is not None:
            positive["lr"] = self.lr
        for key, value in positive.items():
            if value <= 0:
                raise BadOptionError(f"--{key.replace('_', '-')} must be positive, got {value}.")
        if self.image_size % 4:
            raise BadOptionError(f"--image-size must be a multiple of 4, got {self.image_size}.")
        if self.steps is not None and self.steps <= 0:
            raise BadOptionError(f"--steps must be positive, got {self.steps}.")
        if self.epochs is not None and self.epochs <= 0:
            raise BadOptionError(f"--epochs must be positive, got {self.epochs}.")
        if not 0.0 < self.width <= 4.0:
            raise BadOptionError(f"--width must be in (0, 4], got {self.width}.")
        for key in ("content_weight", "style_weight", "tv_weight", "adversarial_weight", "distill_weight"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise BadOptionError(f"--{key.replace('_', '-')} must be >= 0, got {value}.")
        if self.extend is not None and self.adversarial_weight > 0:
            raise BadOptionError("--adversarial-weight is not supported with --extend.")
        if self.keep_best and self.eval_photos is None:
            raise BadOptionError("--keep-best needs --eval-photos: the photos a checkpoint is judged on.")
        if self.extend_init not in ("closest", "mean"):
            raise BadOptionError(f"--extend-init must be closest or mean, got {self.extend_init!r}.")
        if self.amp not in AMP_MODES:
            raise BadOptionError(f"--amp must be one of {AMP_MODES}, got {self.amp!r}.")
        if (
            self.style_layer_weights is not None
            and self.style_layers is not None
            and len(self.style_layer_weights) != len(self.style_layers)
        ):
            raise BadOptionError("--style-layer-weights needs one weight per style layer.")

    @property
    def run_dir(self) -> Path:
        return self.out if self.out is not None else Path("runs") / self.name

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    @property
    def best_checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: paths as strings, tuples as lists."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def resume_mismatches(self, saved: dict[str, Any]) -> list[str]:
        """Fields that change the computation and differ from the checkpoint's config."""
        mine = self.to_dict()
        return sorted(
            key
            for key, value in saved.items()
            if key in mine and key not in RESUME_FREE_FIELDS and mine[key] != value
        )


__all__ = ["AMP_MODES", "RESUME_FREE_FIELDS", "TrainConfig"]
