"""Export a trained generator as a style package (TorchScript + manifest).

The module is scripted (traced when scripting fails), saved, reloaded and compared with the
eager generator on a fresh input, so a broken export never reaches the registry. The package
goes into the run folder and, unless disabled, into the user style folder
(``$STYLEKIT_HOME/styles``) where ``sdk.list_styles()`` finds it.
"""

from __future__ import annotations

import copy
import io
import logging
import os
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from sdk.errors import StylePackageError
from sdk.package import InputContract, Manifest, StylePackage, quiet_torchscript, write_package
from sdk.registry import check_style_name
from sdk.settings import user_styles_dir
from training.checkpoints import load_checkpoint
from training.config import TrainConfig
from training.generator import INPUT_MULTIPLE, TransformerNet, count_parameters
from training.perceptual import PerceptualNetwork


class Trained(Protocol):
    """What :func:`export_trained` needs of a finished trainer (``training.trainer.Trainer``)."""

    config: TrainConfig
    generator: TransformerNet
    network: PerceptualNetwork

    def state_dict(self) -> dict[str, Any]: ...

log = logging.getLogger(__name__)

# Largest |eager - reloaded| accepted on the verification input (float32, CPU).
VERIFY_TOLERANCE = 1e-4


def to_torchscript(generator: nn.Module) -> torch.jit.ScriptModule:
    """Script a CPU float32 eval copy of ``generator`` (trace if scripting fails), then verify it."""
    # TorchScript is the style-package format every consumer (SDK, TorchServe) loads; torch
    # marks it deprecated in favour of torch.export, which those consumers cannot load yet.
    with quiet_torchscript():
        return _script_and_verify(generator)


def _script_and_verify(generator: nn.Module) -> torch.jit.ScriptModule:
    model = copy.deepcopy(generator).float().cpu().eval().to(memory_format=torch.contiguous_format)
    try:
        scripted = torch.jit.script(model)
    except Exception as exc:  # scripting raises several frontend error types
        log.warning("torch.jit.script failed (%s); exporting a traced module instead", exc)
        example = torch.rand(1, 3, 64, 64)
        scripted = torch.jit.trace(model, example)  # type: ignore[no-untyped-call]
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    reloaded: torch.jit.ScriptModule = torch.jit.load(buf, map_location="cpu")  # type: ignore[no-untyped-call]
    # A fresh, non-square input of a size the example never had, to catch a trace baked to a shape.
    x = torch.rand(1, 3, 12 * INPUT_MULTIPLE, 17 * INPUT_MULTIPLE, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model(x)
        got = reloaded(x)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=VERIFY_TOLERANCE, rtol=0):
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise StylePackageError(
            f"Exported TorchScript does not reproduce the eager generator (max diff {diff:.3g})."
        )
    return reloaded


def export_generator(
    generator: nn.Module,
    *,
    name: str,
    out_dir: str | os.PathLike[str],
    training: dict[str, Any],
    source: dict[str, Any],
    thumbnail: bytes | None = None,
    install: bool = True,
    description: str = "",
) -> tuple[StylePackage, StylePackage | None]:
    """Write the package into ``out_dir`` (and the user style folder when ``install``)."""
    module = to_torchscript(generator)
    thumb_name = f"{name}.style.jpg"
    extra = {thumb_name: thumbnail} if thumbnail else {}

    def manifest() -> Manifest:
        return Manifest(
            name=name,
            kind="feedforward",
            model_file=f"{name}.pt",
            description=description or f"Trained here from {source.get('file', 'a style image')}.",
            input=InputContract(multiple=INPUT_MULTIPLE),
            source=dict(source),
            training={**training, "thumbnail": thumb_name if thumbnail else None},
        )

    with quiet_torchscript():
        package = write_package(module, out_dir, manifest(), extra)
        installed = write_package(module, user_styles_dir(), manifest(), extra) if install else None
    if installed is not None:
        log.info("installed style %r into %s", name, installed.root)
    return package, installed


def _source(style_file: str) -> dict[str, str]:
    return {"file": style_file, "attribution": f"trained with stylekit from {style_file}"}


def _training_record(ckpt: dict[str, Any], params: int) -> dict[str, Any]:
    return {
        "config": ckpt["config"],
        "steps": ckpt["step"],
        "epochs": ckpt["epoch"],
        "final_losses": ckpt["losses"],
        "loss_network": ckpt["loss_network"],
        "skipped_files": len(ckpt["skipped_files"]),
        "generator": {"architecture": "johnson2016", "width": ckpt["width"], "parameters": params},
    }


def export_trained(trainer: Trained) -> tuple[StylePackage, StylePackage | None]:
    """Export a trainer's generator into its run folder (and the user style folder unless
    ``config.install`` is off): the step after ``Trainer.fit()``."""
    cfg = trainer.config
    state = trainer.state_dict()
    if not trainer.network.pretrained:
        log.warning("exporting %r, trained with a RANDOM-INIT loss network: a test artefact", cfg.name)
    return export_generator(
        trainer.generator,
        name=cfg.name,
        out_dir=cfg.run_dir,
        training=_training_record(state, count_parameters(trainer.generator)),
        source=_source(cfg.style_image.name),
        thumbnail=state["style_thumbnail"] or None,
        install=cfg.install,
    )


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    *,
    name: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    install: bool = True,
) -> tuple[StylePackage, StylePackage | None]:
    """Export any training checkpoint (``stylekit export``); defaults come from its config."""
    ckpt = load_checkpoint(checkpoint)
    generator = TransformerNet(ckpt["width"])
    generator.load_state_dict(ckpt["generator"])
    style_name = name or str(ckpt["config"]["name"])
    check_style_name(style_name)
    target = Path(out_dir) if out_dir is not None else Path(checkpoint).resolve().parent.parent
    return export_generator(
        generator,
        name=style_name,
        out_dir=target,
        training=_training_record(ckpt, count_parameters(generator)),
        source=_source(str(ckpt["style_source"])),
        thumbnail=ckpt["style_thumbnail"] or None,
        install=install,
    )


__all__ = ["VERIFY_TOLERANCE", "export_checkpoint", "export_generator", "export_trained", "to_torchscript"]
