"""Training checkpoints: the file format, written atomically, read with checks.

Shared by the trainer (which writes and resumes them) and the exporter (``stylekit export``),
so neither imports the other.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from sdk._fs import atomic_write
from sdk.errors import TrainingError

CHECKPOINT_FORMAT = "stylekit.checkpoint/1"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` via a temporary file, synced, then renamed: a crash never leaves half a file."""
    atomic_write(path, lambda fh: torch.save(obj, fh), fsync=True)


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` the way :func:`atomic_torch_save` writes: whole, or not at all."""
    with src.open("rb") as fh:
        atomic_write(dst, lambda out: shutil.copyfileobj(fh, out), fsync=True)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise TrainingError(f"No checkpoint at {p}.")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for a bad file
        raise TrainingError(f"Cannot read checkpoint {p}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"{p} is not a stylekit training checkpoint.")
    return ckpt


__all__ = ["CHECKPOINT_FORMAT", "atomic_copy", "atomic_torch_save", "load_checkpoint"]
