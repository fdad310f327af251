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
import re
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any, Protocol

import torch
from torch import nn

from sdk.errors import StylePackageError
from sdk.package import (
    InputContract,
    Manifest,
    StylePackage,
    SubStyle,
    quiet_torchscript,
    sha256_file,
    write_package,
)
from sdk.registry import check_style_name
from sdk.settings import user_styles_dir
from training.checkpoints import load_checkpoint
from training.config import TrainConfig
from training.extend import NewStyle, NewStyleRow, find_multistyle_package, load_multistyle
from training.generator import INPUT_MULTIPLE, TransformerNet, count_parameters
from training.perceptual import PerceptualNetwork


class Trained(Protocol):
    """What :func:`export_trained` needs of a finished trainer (``training.trainer.Trainer``)."""

    config: TrainConfig
    generator: nn.Module  # a TransformerNet, or the NewStyleRow of an --extend run
    network: PerceptualNetwork
    extension: NewStyle | None

    def state_dict(self) -> dict[str, Any]: ...

log = logging.getLogger(__name__)

# Largest |eager - reloaded| accepted on the verification input (float32, CPU).
VERIFY_TOLERANCE = 1e-4


Inputs = Callable[[torch.Generator], tuple[torch.Tensor, ...]]


def generator_inputs(g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A fresh, non-square image of a size no example had: catches a trace baked to a shape."""
    return (torch.rand(1, 3, 12 * INPUT_MULTIPLE, 17 * INPUT_MULTIPLE, generator=g),)


def multistyle_inputs(styles: int) -> Inputs:
    """Images and a random blend of ``styles`` sub-styles: what a multistyle network takes."""

    def make(g: torch.Generator) -> tuple[torch.Tensor, ...]:
        weights = torch.softmax(torch.randn(2, styles, generator=g), dim=1)
        return torch.rand(2, 3, 48, 68, generator=g), weights

    return make


def to_torchscript(module: nn.Module, inputs: Inputs = generator_inputs) -> torch.jit.ScriptModule:
    """Script a CPU float32 eval copy of ``module`` (trace if scripting fails), reload it and check
    that it reproduces the eager module on ``inputs`` (within :data:`VERIFY_TOLERANCE`)."""
    # TorchScript is the style-package format every consumer (SDK, TorchServe) loads; torch
    # marks it deprecated in favour of torch.export, which those consumers cannot load yet.
    with quiet_torchscript():
        return _script_and_verify(module, inputs)


def _script_and_verify(module: nn.Module, inputs: Inputs) -> torch.jit.ScriptModule:
    model = copy.deepcopy(module).float().cpu().eval().to(memory_format=torch.contiguous_format)
    example = inputs(torch.Generator().manual_seed(3))
    try:
        scripted = torch.jit.script(model)
    except Exception as exc:  # scripting raises several frontend error types
        log.warning("torch.jit.script failed (%s); exporting a traced module instead", exc)
        scripted = torch.jit.trace(model, example)  # type: ignore[no-untyped-call]
    buf = io.BytesIO()
    torch.jit.save(scripted, buf)
    buf.seek(0)
    reloaded: torch.jit.ScriptModule = torch.jit.load(buf, map_location="cpu")  # type: ignore[no-untyped-call]
    x = inputs(torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model(*x)
        got = reloaded(*x)
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=VERIFY_TOLERANCE, rtol=0):
        diff = (got - expected).abs().max().item() if got.shape == expected.shape else float("nan")
        raise StylePackageError(
            f"Exported TorchScript does not reproduce the eager network (max diff {diff:.3g})."
        )
    return reloaded


def write_style_package(
    module: torch.jit.ScriptModule,
    manifest: Callable[[], Manifest],
    out_dir: str | os.PathLike[str],
    extra: dict[str, bytes],
    install: bool,
) -> tuple[StylePackage, StylePackage | None]:
    """Write a verified module as a package into ``out_dir``, and the user style folder when ``install``."""
    with quiet_torchscript():
        package = write_package(module, out_dir, manifest(), extra)
        installed = write_package(module, user_styles_dir(), manifest(), extra) if install else None
    if installed is not None:
        log.info("installed style %r into %s", installed.manifest.name, installed.root)
    return package, installed


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

    return write_style_package(module, manifest, out_dir, extra, install)


def export_new_style(
    row: NewStyleRow,
    base: StylePackage,
    *,
    name: str,
    out_dir: str | os.PathLike[str],
    training: dict[str, Any],
    style_file: str,
    thumbnail: bytes | None = None,
    install: bool = True,
) -> tuple[StylePackage, StylePackage | None]:
    """Write a base multistyle network grown by a trained row as a multistyle package."""
    net = row.extended_network().cpu()
    module = to_torchscript(net, multistyle_inputs(net.num_styles))
    thumb = f"{name}.style.jpg"
    extra = {thumb: thumbnail} if thumbnail else {}
    index = net.num_styles - 1

    def manifest() -> Manifest:
        return Manifest(
            name=name,
            kind="multistyle",
            model_file=f"{name}.pt",
            description=(
                f"{base.manifest.name} with one style added (row {index}), trained here from {style_file}."
            ),
            input=base.manifest.input,
            styles=(SubStyle(index=index, name=name, description=f"Trained here from {style_file}."),),
            source={"file": style_file, "base": base.manifest.name, "base_source": base.manifest.source},
            training={**training, "thumbnail": thumb if thumbnail else None},
        )

    return write_style_package(module, manifest, out_dir, extra, install)


def _source(style_file: str) -> dict[str, str]:
    return {"file": style_file, "attribution": f"trained with stylekit from {style_file}"}


# Config fields that hold paths of the machine a style was trained on. A package travels (a
# plugin, a .mar), so its record keeps what they were, never where: names, and for the painting
# its digest and size.
_PATH_FIELDS = ("style_image", "data", "out", "vgg_weights", "resume")


def portable_config(config: dict[str, Any]) -> dict[str, Any]:
    """A training config as a package records it: every path reduced to its file or folder name."""
    record = dict(config)
    for key in _PATH_FIELDS:
        value = record.get(key)
        if isinstance(value, str) and value:
            record[key] = PurePath(value).name
    return record


def _provenance(config: dict[str, Any]) -> dict[str, Any]:
    """The painting a style was trained from: name, sha256 and size (when the file is still there)."""
    path = Path(str(config.get("style_image", "")))
    if not path.is_file():
        return {"file": path.name}
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def _training_record(ckpt: dict[str, Any], params: int | None) -> dict[str, Any]:
    """What every package trained here records; ``params`` (a generator's size) None for a new row."""
    loss_network = dict(ckpt["loss_network"])
    # "torchvision cache /home/me/.cache/...": where the weights were is this machine's business.
    loss_network["weights"] = re.sub(r"(/[^/\s]+)+/", "", str(loss_network.get("weights", "")))
    record = {
        "config": portable_config(ckpt["config"]),
        "style_image": _provenance(ckpt["config"]),
        "steps": ckpt["step"],
        "epochs": ckpt["epoch"],
        "final_losses": ckpt["losses"],
        "loss_network": loss_network,
        "skipped_files": len(ckpt["skipped_files"]),
    }
    if params is not None:
        record["generator"] = {"architecture": "johnson2016", "width": ckpt["width"], "parameters": params}
    return record


def export_trained(trainer: Trained) -> tuple[StylePackage, StylePackage | None]:
    """Export what a trainer trained into its run folder (and the user style folder unless
    ``config.install`` is off): the step after ``Trainer.fit()``, for a generator or a new row."""
    cfg = trainer.config
    if not trainer.network.pretrained:
        log.warning("exporting %r, trained with a RANDOM-INIT loss network: a test artefact", cfg.name)
    return _export_state(trainer.state_dict(), trainer.generator, trainer.extension, name=cfg.name,
                         out_dir=cfg.run_dir, install=cfg.install)  # fmt: skip


def export_checkpoint(
    checkpoint: str | os.PathLike[str],
    *,
    name: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    install: bool = True,
) -> tuple[StylePackage, StylePackage | None]:
    """Export any training checkpoint (``stylekit export``); defaults come from its config."""
    ckpt = load_checkpoint(checkpoint)
    extension = None
    if ckpt.get("extend"):
        saved = ckpt["extend"]
        base = find_multistyle_package(str(saved["base"]))
        extension = NewStyle(base, NewStyleRow(load_multistyle(base), None), str(saved["init"]))
        module: nn.Module = extension.row
    else:
        module = TransformerNet(ckpt["width"])
    module.load_state_dict(ckpt["generator"])
    style_name = check_style_name(name or str(ckpt["config"]["name"]))
    target = Path(out_dir) if out_dir is not None else Path(checkpoint).resolve().parent.parent
    return _export_state(ckpt, module, extension, name=style_name, out_dir=target, install=install)


def _export_state(state: dict[str, Any], module: nn.Module, extension: NewStyle | None, *, name: str,
                  out_dir: str | os.PathLike[str], install: bool
                  ) -> tuple[StylePackage, StylePackage | None]:  # fmt: skip
    """A trainer's state (or a checkpoint) and its module -> the style package, by what was trained."""
    style_file = str(state["style_source"])
    thumbnail = state["style_thumbnail"] or None
    if extension is None:
        record = _training_record(state, count_parameters(module))
        return export_generator(module, name=name, out_dir=out_dir, training=record,
                                source=_source(style_file), thumbnail=thumbnail, install=install)  # fmt: skip
    assert isinstance(module, NewStyleRow)
    initial = state.get("first_losses") or {}
    record = {**_training_record(state, None), **extension.record(), "initial_losses": initial}
    return export_new_style(module, extension.base, name=name, out_dir=out_dir, training=record,
                            style_file=style_file, thumbnail=thumbnail, install=install)  # fmt: skip


__all__ = [
    "VERIFY_TOLERANCE",
    "export_checkpoint",
    "export_generator",
    "export_new_style",
    "export_trained",
    "to_torchscript",
    "write_style_package",
]
