"""Perceptual losses (content, style, total variation) and the optional patch discriminator.

total = content_weight * content + style_weight * style + tv_weight * tv
        (+ adversarial_weight * adversarial, when the patch discriminator is on)

- content: MSE between loss-network features of the generated image and of the photo at the
  content layer(s) (relu4_2 for VGG-19 by default).
- style: for each style layer, MSE between the Gram matrix of the generated features and the
  Gram matrix of the style image, times the layer's weight. The style image's Grams are
  computed once, when the loss is built, and kept as buffers.
- tv: mean absolute difference between neighbouring pixels (anisotropic total variation);
  it suppresses the high-frequency noise a perceptual loss alone tolerates.

Grams and losses are computed in float32 even under bf16/fp16 autocast: a Gram sums H*W
products per entry, which bf16's 8-bit mantissa cannot accumulate accurately.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from training.perceptual import PerceptualNetwork


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, C], normalised by C*H*W so layers of any size are comparable."""
    n, c, h, w = features.shape
    if features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous():
        # channels_last (what the trainer runs) is [N, H*W, C] in memory: multiply in that
        # layout, a view, rather than reshape to [N, C, H*W], which copies. With the one float
        # copy this is about 0.6x the time of the reshape, forward and backward, and exact.
        f = features.permute(0, 2, 3, 1).reshape(n, h * w, c).float()
        gram = torch.bmm(f.transpose(1, 2), f)
    else:
        f = features.float().reshape(n, c, h * w)
        gram = torch.bmm(f, f.transpose(1, 2))
    return gram / (c * h * w)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean()
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean()
    return dx + dy


class PerceptualLoss(nn.Module):
    """Content + style + TV loss against one fixed style image.

    ``forward(generated, content)`` returns a dict of float32 scalars: ``content``, ``style``,
    ``tv`` (unweighted) and ``total`` (weighted sum). The loss network runs once on the
    generated batch (with autograd) and once on the photos, without autograd and only as deep
    as the content layers (the photos' style features are never used).
    """

    def __init__(
        self,
        network: PerceptualNetwork,
        style_image: torch.Tensor,
        *,
        content_layers: Sequence[str],
        style_layers: Sequence[str],
        content_weight: float,
        style_weight: float,
        tv_weight: float,
        style_layer_weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        missing = [layer for layer in (*content_layers, *style_layers) if layer not in network.layers]
        if missing:
            raise ValueError(f"loss network does not output layer(s) {missing} (it has {network.layers})")
        self.network = network
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)
        self.content_weight = content_weight
        self.style_weight = style_weight
        self.tv_weight = tv_weight
        weights = dict(style_layer_weights or {})
        self.layer_weights = {layer: float(weights.get(layer, 1.0)) for layer in self.style_layers}
        with torch.no_grad():
            feats = network(style_image)
            for i, layer in enumerate(self.style_layers):
                self.register_buffer(f"style_gram_{i}", gram_matrix(feats[layer]))

    def style_grams(self) -> dict[str, torch.Tensor]:
        return {layer: getattr(self, f"style_gram_{i}") for i, layer in enumerate(self.style_layers)}

    def forward(self, generated: torch.Tensor, content: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            target = self.network.extract(content, self.content_layers)
        feats = self.network(generated)
        content_loss = sum(
            (F.mse_loss(feats[layer].float(), target[layer].float()) for layer in self.content_layers),
            torch.zeros((), device=generated.device),
        )
        style_loss = torch.zeros((), device=generated.device)
        for layer, gram_style in self.style_grams().items():
            gram = gram_matrix(feats[layer])
            style_loss = style_loss + self.layer_weights[layer] * F.mse_loss(
                gram, gram_style.expand_as(gram)
            )
        tv = total_variation(generated.float())
        total = self.content_weight * content_loss + self.style_weight * style_loss + self.tv_weight * tv
        return {"content": content_loss, "style": style_loss, "tv": tv, "total": total}


class PatchDiscriminator(nn.Module):
    """A small PatchGAN: one real/fake score per ~30 px patch (the thesis's adversarial idea).

    Four 4x4 convs (stride 2, 2, 2, 1) with LeakyReLU and instance norm, then a 1-channel 4x4
    conv. Trained with the least-squares GAN loss: style-image crops are "real", generated
    images are "fake"; the generator is pushed toward patches the critic takes for the painting.
    """

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.net = nn.Sequential(
            nn.Conv2d(3, c, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(2 * c, affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * c, 4 * c, 4, stride=2, padding=1, bias=False),
            nn.InstanceNorm2d(4 * c, affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 4, stride=1, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = self.net(x)
        return scores


def lsgan_loss(scores: torch.Tensor, real: bool) -> torch.Tensor:
    target = 1.0 if real else 0.0
    return ((scores.float() - target) ** 2).mean()


def random_patches(
    image: torch.Tensor, count: int, size: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``count`` random ``size`` x ``size`` crops of ``image`` [1, 3, H, W] (H, W >= size)."""
    _, _, h, w = image.shape
    ys = torch.randint(0, h - size + 1, (count,), generator=generator).tolist()
    xs = torch.randint(0, w - size + 1, (count,), generator=generator).tolist()
    return torch.cat([image[:, :, y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])


__all__ = [
    "PatchDiscriminator",
    "PerceptualLoss",
    "gram_matrix",
    "lsgan_loss",
    "random_patches",
    "total_variation",
]
