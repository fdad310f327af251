"""Tiny real style networks with outputs a test can compute by hand.

They are genuine TorchScript style packages (written with ``sdk.package.write_package``), just
small: the tests exercise the registry, the API and the CLI, not the taste of a painting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from sdk.package import InputContract, Manifest, StylePackage, SubStyle, write_package


class Negative(nn.Module):
    """Feedforward: the photographic negative, ``1 - x``, as a 1x1 convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1)
        with torch.no_grad():
            self.conv.weight.copy_(-torch.eye(3).view(3, 3, 1, 1))
            assert self.conv.bias is not None
            self.conv.bias.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.conv(x)
        return y


class Tints(nn.Module):
    """Multistyle: sub-style ``i`` scales R, G, B by ``table[i]``; a blend mixes the scales."""

    def __init__(self, table: Sequence[Sequence[float]]) -> None:
        super().__init__()
        self.register_buffer("table", torch.tensor(table, dtype=torch.float32))

    def forward(self, x: torch.Tensor, style_weights: torch.Tensor) -> torch.Tensor:
        scale = style_weights @ self.table
        return (x * scale[:, :, None, None]).clamp(0.0, 1.0)


class MeanColor(nn.Module):
    """Arbitrary: moves the photo's mean colour to the style image's mean colour."""

    def forward(self, x: torch.Tensor, style_image: torch.Tensor) -> torch.Tensor:
        return self.transfer(x, self.style_vector(style_image))

    @torch.jit.export
    def style_vector(self, style_image: torch.Tensor) -> torch.Tensor:
        return style_image.mean(dim=(2, 3))

    @torch.jit.export
    def transfer(self, x: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
        shifted = x - x.mean(dim=(2, 3), keepdim=True) + vector[:, :, None, None]
        return shifted.clamp(0.0, 1.0)


SOURCE = {"title": "Test pattern", "artist": "stylekit tests", "license": "CC0-1.0"}
# Red-, green- and blue-only tints: the output shows plainly which one ran.
TINTS = (("tint-red", (1.0, 0.0, 0.0)), ("tint-green", (0.0, 1.0, 0.0)), ("tint-blue", (0.0, 0.0, 1.0)))


def write_negative(out_dir: str | os.PathLike[str], name: str = "negative") -> StylePackage:
    manifest = Manifest(
        name=name,
        kind="feedforward",
        model_file=f"{name}.pt",
        description="Photographic negative (test style)",
        input=InputContract(multiple=1),
        source=dict(SOURCE),
    )
    return write_package(torch.jit.script(Negative()), out_dir, manifest)


def write_tints(
    out_dir: str | os.PathLike[str],
    name: str = "tints",
    tints: Sequence[tuple[str, tuple[float, float, float]]] = TINTS,
) -> StylePackage:
    """A multistyle package; sub-style ``i`` gets the numeric alias ``str(i)``."""
    manifest = Manifest(
        name=name,
        kind="multistyle",
        model_file=f"{name}.pt",
        description="Colour channel tints (test styles)",
        styles=tuple(
            SubStyle(index=i, name=sub, description=f"keeps {sub.split('-')[-1]}", aliases=(str(i),))
            for i, (sub, _) in enumerate(tints)
        ),
        source=dict(SOURCE),
    )
    return write_package(torch.jit.script(Tints([rgb for _, rgb in tints])), out_dir, manifest)


def write_mean_color(out_dir: str | os.PathLike[str], name: str = "mean-color") -> StylePackage:
    manifest = Manifest(
        name=name,
        kind="arbitrary",
        model_file=f"{name}.pt",
        description="Takes the style image's mean colour (test style)",
        input=InputContract(style_image_size=64),
        source=dict(SOURCE),
    )
    return write_package(torch.jit.script(MeanColor()), out_dir, manifest)
