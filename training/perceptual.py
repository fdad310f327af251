"""The base class of every loss network: a frozen feature extractor.

Its own module so that the networks (VGG in ``loss_networks``, MobileNet in
``perceptual_mobilenet``) and the losses depend on it, and ``loss_networks`` (which names them
all) depends on the MobileNet network, never the reverse.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import torch
from torch import nn


class PerceptualNetwork(nn.Module):
    """Frozen feature extractor.

    ``forward(x: RGB NCHW in [0, 1]) -> dict[layer_name, Tensor]``; normalises inputs itself the
    way its weights expect; returns only the requested layers; truncated after the deepest
    layer in use. Stays in eval mode and never needs gradients for its own parameters.
    """

    name: str = "perceptual"
    default_content_layers: tuple[str, ...] = ()
    default_style_layers: tuple[str, ...] = ()
    # (content, style, tv) weights used when the config leaves them unset; magnitudes depend on
    # the feature scale of the network. VGG: the pytorch/examples fast_neural_style values for
    # content and style (they match our MSE/Gram normalisation), and a TV weight that keeps
    # the TV term around 1% of the total on photos.
    default_loss_weights: tuple[float, float, float] = (1e5, 1e10, 1e4)

    def __init__(self, layers: Sequence[str], *, pretrained: bool, weights_source: str) -> None:
        super().__init__()
        self.layers: tuple[str, ...] = tuple(layers)
        self.pretrained = pretrained
        # Where the weights came from (a path, "torchvision cache", "random-init (tests only)").
        self.weights_source = weights_source

    def freeze(self) -> None:
        """Drop gradients of the network's own parameters and switch to eval mode for good."""
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True) -> PerceptualNetwork:
        # A loss network is always in eval mode, even inside a model that is put in train mode.
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    def extract(self, x: torch.Tensor, layers: Collection[str]) -> dict[str, torch.Tensor]:
        """Only ``layers`` (a subset of ``self.layers``); subclasses may stop early to save work."""
        return {name: t for name, t in self(x).items() if name in layers}


__all__ = ["PerceptualNetwork"]
