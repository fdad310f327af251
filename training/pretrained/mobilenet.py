"""MobileNetV2 (width 1.0), the trunk of Magenta's arbitrary-style predictor (Ghiasi et al. 2017).

Batch norm is folded into the convolutions (every convolution has a bias), activations are
ReLU6, and padding is TensorFlow's "SAME" zero padding, which is asymmetric on stride-2 layers
(one extra row/column at the bottom/right); :func:`tf_same_pad` reproduces it for any input
size. The weights come from the int8 TFLite model, dequantized per channel to float32.

Input: RGB [N, 3, H, W] in **[0, 1]** (the range the predictor was given; no ImageNet
mean/std normalization).

Reusable as a feature extractor (e.g. an offline perceptual loss network)::

    from training.pretrained.mobilenet import load_trunk
    trunk = load_trunk()                 # eager MobileNetV2Trunk from sdk/styles/arbitrary.pt
    feats = trunk.features(x, [0, 3, 6, 13])   # list of tensors, in the order asked

Feature indices (:data:`FEATURE_CHANNELS`, :data:`FEATURE_STRIDES`): ``0`` is the stem output
(32 channels, stride 2); ``k`` in 1..17 is the output of inverted-residual block ``k - 1``
(TF name ``expanded_conv`` for k = 1, ``expanded_conv_{k-1}`` after); ``18`` is the final 1x1
conv ``Conv_1`` (1280 channels, stride 32). Block outputs have no activation (linear
bottlenecks); the stem and ``18`` are after ReLU6. :func:`load_trunk` returns the trunk in eval
mode with ``requires_grad`` off; it needs only torch and the shipped built-in package.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (expansion, output channels, repeats, first stride), as in the MobileNetV2 paper.
BLOCK_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _feature_table() -> tuple[tuple[int, ...], tuple[int, ...]]:
    channels, strides = [32], [2]
    stride = 2
    for _, c, n, s in BLOCK_SETTINGS:
        for i in range(n):
            stride *= s if i == 0 else 1
            channels.append(c)
            strides.append(stride)
    return (*channels, 1280), (*strides, stride)


FEATURE_CHANNELS, FEATURE_STRIDES = _feature_table()
"""Channels and stride (relative to the input) of each feature index 0..18."""
NUM_FEATURES = len(FEATURE_CHANNELS)


def tf_same_pad(x: Tensor, kernel: int, stride: int) -> Tensor:
    """Zero-pad ``x`` as TensorFlow's padding="SAME" would for this kernel and stride."""
    h, w = x.shape[-2], x.shape[-1]
    ph = max(kernel - stride, 0) if h % stride == 0 else max(kernel - h % stride, 0)
    pw = max(kernel - stride, 0) if w % stride == 0 else max(kernel - w % stride, 0)
    return F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])


class InvertedResidual(nn.Module):
    """1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear projection, + input when shapes match."""

    def __init__(self, c_in: int, c_out: int, expansion: int, stride: int) -> None:
        super().__init__()
        hidden = c_in * expansion
        self.has_expand = expansion != 1
        self.expand = nn.Conv2d(c_in, hidden, 1) if self.has_expand else nn.Identity()
        self.depthwise = nn.Conv2d(hidden, hidden, 3, stride, groups=hidden)
        self.project = nn.Conv2d(hidden, c_out, 1)
        self.stride = stride
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        h = torch.clamp(self.expand(x), 0.0, 6.0) if self.has_expand else x
        h = torch.clamp(self.depthwise(tf_same_pad(h, 3, self.stride)), 0.0, 6.0)
        y: Tensor = self.project(h)
        return x + y if self.use_residual else y


class MobileNetV2Trunk(nn.Module):
    """Stem, 17 inverted-residual blocks and the 1x1 conv to 1280 channels (no classifier)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, 2)
        blocks: list[nn.Module] = []
        c_in = 32
        for expansion, c_out, repeats, stride in BLOCK_SETTINGS:
            for i in range(repeats):
                blocks.append(InvertedResidual(c_in, c_out, expansion, stride if i == 0 else 1))
                c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(c_in, 1280, 1)

    def forward(self, x: Tensor) -> Tensor:
        """[N, 3, H, W] in [0, 1] -> [N, 1280, H/32, W/32] (feature index 18)."""
        x = torch.clamp(self.stem(tf_same_pad(x, 3, 2)), 0.0, 6.0)
        for block in self.blocks:
            x = block(x)
        return torch.clamp(self.head(x), 0.0, 6.0)

    @torch.jit.unused
    def features(self, x: Tensor, indices: Sequence[int]) -> list[Tensor]:
        """Outputs at the feature ``indices`` (see the module docstring), in the order asked.

        Runs only as far as the deepest index asked for.
        """
        wanted = sorted(set(indices))
        if not wanted or wanted[0] < 0 or wanted[-1] >= NUM_FEATURES:
            raise ValueError(f"feature indices must be in [0, {NUM_FEATURES - 1}], got {list(indices)}")
        found: dict[int, Tensor] = {}
        x = torch.clamp(self.stem(tf_same_pad(x, 3, 2)), 0.0, 6.0)
        found[0] = x
        for k, block in enumerate(self.blocks, start=1):
            if k > wanted[-1]:
                break
            x = block(x)
            found[k] = x
        if wanted[-1] == NUM_FEATURES - 1:
            found[NUM_FEATURES - 1] = torch.clamp(self.head(x), 0.0, 6.0)
        return [found[i] for i in indices]


def trunk_state_from_arbitrary(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The trunk's weights out of an :class:`~training.pretrained.arbitrary.ArbitraryStylizer` state dict."""
    prefix = "predictor.trunk."
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def load_trunk(
    path: str | os.PathLike[str] | None = None, device: str | torch.device = "cpu"
) -> MobileNetV2Trunk:
    """Eager, frozen MobileNetV2 trunk with the weights of the built-in ``arbitrary`` package.

    ``path`` is the package's ``.pt`` (or ``.json``/folder); default: the one shipped in
    ``sdk/styles``. The TorchScript file is checked against its manifest, then only its state
    dict is used.
    """
    from sdk.package import read_package
    from sdk.styles import BUILTIN_DIR

    package = read_package(path if path is not None else BUILTIN_DIR / "arbitrary.json")
    scripted = package.load_module(map_location="cpu")
    trunk = MobileNetV2Trunk()
    trunk.load_state_dict(trunk_state_from_arbitrary(dict(scripted.state_dict())), strict=True)
    trunk.requires_grad_(False)
    return trunk.eval().to(device)


__all__ = [
    "BLOCK_SETTINGS",
    "FEATURE_CHANNELS",
    "FEATURE_STRIDES",
    "NUM_FEATURES",
    "InvertedResidual",
    "MobileNetV2Trunk",
    "load_trunk",
    "tf_same_pad",
    "trunk_state_from_arbitrary",
]
