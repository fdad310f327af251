"""An offline perceptual loss network: the MobileNetV2 trunk of the built-in arbitrary-style predictor.

VGG weights cannot be downloaded on an air-gapped machine, but the built-in ``arbitrary``
style package (``sdk/styles/arbitrary.pt``) already ships a pretrained MobileNetV2: the trunk of
Magenta's style predictor, which was trained to summarise paintings. Its features carry
brushwork, where a random-init VGG only moves colours, and a forward+backward pass costs a
fraction of VGG-19's on a CPU.

Taps (``layers``): ``"stem"`` (32 channels, stride 2) and ``"block1"`` .. ``"block17"``, the
outputs of the inverted-residual blocks, numbered as the feature indices of
:mod:`training.pretrained.mobilenet` (``blockK`` = feature index K). Defaults, measured with
Gatys-style image optimisation and CPU training runs (``docs/offline_training.md``): style
Grams at ``stem``, ``block2``, ``block5``, ``block9``, ``block12``; content at ``block5``.

Two changes against the faithful predictor (``antialias=True``, the default), because a loss
network's gradients, not its outputs, shape what a generator learns:

- TensorFlow's "SAME" padding pads stride-2 convolutions on the bottom/right only; their
  gradients then pile up on those edges and the generator paints bright seams there. Every
  3x3 convolution here reflect-pads one pixel on each side instead, and the input itself is
  reflect-padded by ``input_pad`` pixels, so no image pixel sits on the network's border.
- A stride-2 3x3 convolution reaches even and odd pixels with different numbers of taps, so
  its gradient alternates from pixel to pixel: the generator learns a fine checkerboard. A
  [1, 2, 1] x [1, 2, 1] blur before each stride-2 convolution (anti-aliased downsampling,
  Zhang 2019) has a zero at the Nyquist frequency and removes that pattern from the gradient.

``antialias=False`` keeps the trunk's own TF padding (features equal the predictor's).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from sdk.errors import BadOptionError
from training.perceptual import PerceptualNetwork
from training.pretrained.mobilenet import (
    NUM_FEATURES,
    InvertedResidual,
    MobileNetV2Trunk,
    load_trunk,
    tf_same_pad,
)

log = logging.getLogger(__name__)

# Feature index 0 is the stem, K in 1..17 the K-th inverted-residual block; the 1280-channel
# head (index 18) is left out: stride 32 and 1280 channels make a poor, costly Gram.
TAPS: tuple[str, ...] = ("stem", *(f"block{k}" for k in range(1, NUM_FEATURES - 1)))


def tap_index(name: str) -> int:
    """``"stem"`` -> 0, ``"blockK"`` -> K (the feature index in :mod:`training.pretrained.mobilenet`)."""
    try:
        return TAPS.index(name)
    except ValueError:
        raise BadOptionError(
            f"Unknown mobilenet layer {name!r}; choose from stem, block1 .. block17."
        ) from None


class MobileNetPerceptual(PerceptualNetwork):
    """Frozen MobileNetV2 features for content/style losses; input RGB NCHW in [0, 1].

    ``package``: the built-in ``arbitrary`` package to take the weights from (default: the one
    shipped in ``sdk/styles``); ``trunk``: an already loaded trunk instead (its weights are
    shared, not copied). The network is cut after the deepest requested tap.
    """

    name = "mobilenet"
    default_content_layers = ("block5",)
    default_style_layers = ("stem", "block2", "block5", "block9", "block12")
    # (content, style, tv). Style Grams of these taps are ~1e-3..1e-1 and block5's content MSE
    # ~5-15 on photos. Measured on CPU runs (docs/offline_training.md): style x 1e4 paints
    # brushwork over everything and loses the buildings; 3e3 keeps their outlines. TV went
    # from 10 to 30 with it against fine stripes in a slim generator's output (still faintly
    # visible after 800 steps).
    default_loss_weights = (1.0, 3e3, 30.0)
    blur: torch.Tensor

    def __init__(
        self,
        layers: Sequence[str] | None = None,
        *,
        package: str | os.PathLike[str] | None = None,
        trunk: MobileNetV2Trunk | None = None,
        antialias: bool = True,
        input_pad: int = 8,
    ) -> None:
        wanted = tuple(
            dict.fromkeys(
                layers if layers is not None else self.default_content_layers + self.default_style_layers
            )
        )
        if not wanted:
            raise BadOptionError("mobilenet: no layers requested.")
        indices = [tap_index(name) for name in wanted]
        if input_pad < 0:
            raise BadOptionError(f"input_pad must be >= 0, got {input_pad}.")
        if trunk is None:
            trunk = load_trunk(package)
            source = str(package) if package is not None else "built-in package arbitrary"
        else:
            source = "given trunk"
        super().__init__(wanted, pretrained=True, weights_source=source)
        deepest = max(indices)
        self.stem = trunk.stem
        # blockK is blocks[K-1]; nothing past the deepest tap is kept.
        self.blocks = nn.ModuleList(list(trunk.blocks)[:deepest])
        self.antialias = antialias
        self.input_pad = input_pad
        self._taps = dict(zip(indices, wanted, strict=True))
        binomial = torch.tensor([1.0, 2.0, 1.0])
        self.register_buffer(
            "blur", (binomial[:, None] * binomial[None, :] / 16.0)[None, None], persistent=False
        )
        self.freeze()
        log.info("mobilenet loss network: taps %s, weights from %s, antialias=%s", wanted, source, antialias)

    def _conv3x3(self, conv: nn.Module, x: torch.Tensor, stride: int) -> torch.Tensor:
        if not self.antialias:
            return cast(torch.Tensor, conv(tf_same_pad(x, 3, stride)))
        if stride == 2:
            channels = x.shape[1]
            kernel = self.blur.to(x.dtype).expand(channels, 1, 3, 3)
            x = F.conv2d(F.pad(x, [1, 1, 1, 1], mode="reflect"), kernel, groups=channels)
        return cast(torch.Tensor, conv(F.pad(x, [1, 1, 1, 1], mode="reflect")))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.input_pad:
            x = F.pad(x, [self.input_pad] * 4, mode="reflect")
        out: dict[str, torch.Tensor] = {}
        h = torch.clamp(self._conv3x3(self.stem, x, 2), 0.0, 6.0)
        if 0 in self._taps:
            out[self._taps[0]] = h
        for k, module in enumerate(self.blocks, start=1):
            block = cast(InvertedResidual, module)
            e = torch.clamp(block.expand(h), 0.0, 6.0) if block.has_expand else h
            d = torch.clamp(self._conv3x3(block.depthwise, e, block.stride), 0.0, 6.0)
            y = block.project(d)
            h = h + y if block.use_residual else y
            if k in self._taps:
                out[self._taps[k]] = h
        return out


__all__ = ["TAPS", "MobileNetPerceptual", "tap_index"]
