"""The feed-forward generator of Johnson et al. (2016), "Perceptual Losses for Real-Time Style Transfer".

Layout: 9x9 conv 3->32, two stride-2 3x3 convs (64, 128), five residual blocks of 128, two
stages of nearest 2x resize + 3x3 conv (resize-then-convolve instead of transposed convs,
which leave checkerboard artefacts), 9x9 conv to RGB. Instance norm after every conv but the
last, reflection padding everywhere (zero padding darkens the borders).

Output: ``sigmoid`` of the last conv, so the result is in [0, 1] by construction, matching the
style-package contract without clamping (a clamp would kill gradients of saturated pixels;
a sigmoid only dampens them). Input: RGB NCHW float in [0, 1], sides a multiple of 4.

``width`` scales every channel count (0.25 gives a ~16x cheaper network for CPUs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Two stride-2 convolutions down, two 2x upsamplings back: sides must divide by 4.
INPUT_MULTIPLE = 4


def scaled_channels(channels: int, width: float) -> int:
    """Channel count for a width multiplier; at least 4 so instance norm has something to normalise."""
    return max(4, round(channels * width))


class ConvLayer(nn.Module):
    """Reflection pad + conv (+ instance norm + ReLU)."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, norm: bool = True, relu: bool = True
    ) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        # No conv bias where instance norm follows: the norm's mean subtraction removes it anyway.
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride=stride, bias=not norm)
        self.norm = nn.InstanceNorm2d(c_out, affine=True) if norm else nn.Identity()
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.relu(self.norm(self.conv(self.pad(x))))
        return y


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.conv2 = ConvLayer(channels, channels, 3, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv2(self.conv1(x))
        return x + y


class UpsampleConv(nn.Module):
    """Nearest-neighbour 2x resize, then a conv: no checkerboard, unlike ConvTranspose2d."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3) -> None:
        super().__init__()
        self.conv = ConvLayer(c_in, c_out, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return y


class TransformerNet(nn.Module):
    """Johnson et al.'s residual generator: RGB [0, 1] in, RGB [0, 1] out, same size."""

    def __init__(self, width: float = 1.0, residual_blocks: int = 5) -> None:
        super().__init__()
        if not 0.0 < width <= 4.0:
            raise ValueError(f"width must be in (0, 4], got {width}")
        c1, c2, c3 = (scaled_channels(c, width) for c in (32, 64, 128))
        self.width = width
        self.down = nn.Sequential(
            ConvLayer(3, c1, 9),
            ConvLayer(c1, c2, 3, stride=2),
            ConvLayer(c2, c3, 3, stride=2),
        )
        self.residual = nn.Sequential(*(ResidualBlock(c3) for _ in range(residual_blocks)))
        self.up = nn.Sequential(UpsampleConv(c3, c2), UpsampleConv(c2, c1))
        self.out = ConvLayer(c1, 3, 9, norm=False, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.out(self.up(self.residual(self.down(x)))))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


__all__ = ["INPUT_MULTIPLE", "ResidualBlock", "TransformerNet", "UpsampleConv", "count_parameters"]
