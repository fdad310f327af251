"""Training data: any folder tree of photos (the COCO layout included), resized and cropped.

Images are decoded through ``sdk.imaging.decode`` (the one image pipeline: EXIF orientation,
CMYK/16-bit/palette to RGB, size limits). A file that does not decode is skipped with a warning:
the sample is replaced by the next readable file, and its path travels back with the batch so the
trainer can count it even when it was found in a worker process.

Order and crops are a pure function of (seed, epoch, position): :class:`ResumableSampler` hands
each index together with a crop seed, so a resumed run sees exactly the images and crops an
uninterrupted run would have seen, with any number of workers and ranks.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset, DistributedSampler, Sampler

from sdk import imaging
from sdk.errors import InvalidImageError, TrainingError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def find_images(root: str | Path) -> list[Path]:
    """All image files under ``root`` (recursively), sorted so every rank sees the same list."""
    base = Path(root)
    if not base.is_dir():
        raise TrainingError(f"Training data folder {base} does not exist.")
    files = sorted(p for p in base.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise TrainingError(
            f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found under {base}."
        )
    return files


def resize_and_crop(
    image: torch.Tensor, size: int, crop: tuple[float, float] | None = None
) -> torch.Tensor:
    """[1, 3, H, W] -> [3, size, size]: scale the short side to ``size``, then crop the long side.

    ``crop`` = (fy, fx) in [0, 1] picks the crop position (random crops); None = centre crop.
    """
    _, _, h, w = image.shape
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        image = F.interpolate(image, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    fy, fx = crop if crop is not None else (0.5, 0.5)
    top, left = round((nh - size) * fy), round((nw - size) * fx)
    return image[0, :, top : top + size, left : left + size].clamp_(0.0, 1.0)


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Decode one image to [1, 3, H, W] float in [0, 1]; ``size`` scales it so its long side is ``size``."""
    decoded = imaging.decode(path)
    tensor = imaging.to_tensor(decoded.rgb)
    if size is not None:
        _, _, h, w = tensor.shape
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        tensor = F.interpolate(tensor, size=(nh, nw), mode="bilinear", antialias=True, align_corners=False)
    return tensor.clamp_(0.0, 1.0)


@dataclass(frozen=True)
class Sample:
    image: torch.Tensor  # [3, S, S]
    skipped: tuple[str, ...]  # unreadable files passed over to get this sample


class ImageFolderDataset(Dataset[Sample]):
    """Photos under a folder, each as a ``size`` x ``size`` crop. Indexed by (index, crop seed)."""

    def __init__(self, files: Sequence[Path], size: int, random_crop: bool = True) -> None:
        self.files = list(files)
        self.size = size
        self.random_crop = random_crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        index, crop_seed = key
        skipped: list[str] = []
        # Walk forward from a bad file to the next good one; give up after a full lap.
        for offset in range(len(self.files)):
            path = self.files[(index + offset) % len(self.files)]
            try:
                tensor = imaging.to_tensor(imaging.decode(path).rgb)
            except InvalidImageError as exc:
                log.warning("skipping unreadable training image %s: %s", path, exc)
                skipped.append(str(path))
                continue
            crop = None
            if self.random_crop:
                g = torch.Generator().manual_seed(crop_seed)
                fy, fx = torch.rand(2, generator=g).tolist()
                crop = (fy, fx)
            return Sample(resize_and_crop(tensor, self.size, crop), tuple(skipped))
        raise TrainingError(f"None of the {len(self.files)} training images could be decoded.")


def collate(samples: list[Sample]) -> tuple[torch.Tensor, list[str]]:
    images = torch.stack([s.image for s in samples])
    return images, [path for s in samples for path in s.skipped]


class ResumableSampler(Sampler[tuple[int, int]]):
    """Shuffled, sharded (one shard per rank, via ``DistributedSampler``) and resumable.

    Yields (dataset index, crop seed). ``start`` skips that many of this rank's samples in the
    current epoch, which is how ``--resume`` continues mid-epoch on the exact same order.
    """

    def __init__(
        self, size: int, *, seed: int, rank: int = 0, world_size: int = 1, batch_size: int = 1
    ) -> None:
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start = 0
        # Whole batches only: every rank runs the same number of steps, and no short last batch.
        per_rank = size // world_size if size >= world_size else 1
        self.batches = per_rank // batch_size
        self.batch_size = batch_size
        if self.batches == 0:
            raise TrainingError(
                f"{size} training images are too few for batch size {batch_size} on {world_size} rank(s)."
            )

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch = epoch
        self.start = start

    def __len__(self) -> int:
        return self.batches * self.batch_size - self.start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order: DistributedSampler[int] = DistributedSampler(
            range(self.size),  # type: ignore[arg-type]  # only its length is used
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=True,
            seed=self.seed,
            drop_last=self.size >= self.world_size,
        )
        order.set_epoch(self.epoch)
        indices = list(order)[: self.batches * self.batch_size]
        for position in range(self.start, len(indices)):
            # A distinct, reproducible crop per (seed, epoch, rank, position).
            crop_seed = (self.seed * 1_000_003 + self.epoch) * 65_537 + self.rank * 7_919 + position
            yield indices[position], crop_seed % (2**63)


__all__ = [
    "IMAGE_SUFFIXES",
    "ImageFolderDataset",
    "ResumableSampler",
    "Sample",
    "collate",
    "find_images",
    "load_image",
    "resize_and_crop",
]
