"""Perceptual (loss) networks: frozen feature extractors that return named activations.

``build_loss_network("vgg19" | "vgg16" | "mobilenet")`` gives a :class:`PerceptualNetwork`:
``forward(x)`` takes RGB NCHW in [0, 1], normalises it the way its weights expect, and returns
``{layer_name: activation}`` for the requested layers only. The network is cut after the deepest
requested layer, so no work is spent on layers no loss reads.

VGG weights come from, in this order: the ``weights`` argument (``--vgg-weights FILE``), the
``STYLEKIT_VGG_WEIGHTS`` environment variable, torchvision's download cache (``$TORCH_HOME``),
and finally torchvision's normal download. When none works, :class:`WeightsNotFoundError` names
every option. ``pretrained=False`` builds a random-init network; it exists for unit tests of the
training machinery only (a random VGG moves colours, it does not teach brushwork).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sdk import settings
from sdk.errors import BadOptionError, WeightsNotFoundError
from training.perceptual import PerceptualNetwork

log = logging.getLogger(__name__)

VGG_WEIGHTS_ENV = settings.VGG_WEIGHTS
LOSS_NETWORKS = ("vgg19", "vgg16", "mobilenet")

# ImageNet statistics, the normalisation torchvision's VGG weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Convolutions per block; layer names follow the Gatys/Johnson papers (relu3_1 = block 3, conv 1).
_VGG_BLOCKS = {"vgg19": (2, 2, 4, 4, 4), "vgg16": (2, 2, 3, 3, 3)}


def vgg_layer_names(arch: str) -> list[str]:
    """Names of the modules of torchvision's ``vgg.features`` in order (conv1_1, relu1_1, pool1, ...)."""
    names: list[str] = []
    for block, convs in enumerate(_VGG_BLOCKS[arch], start=1):
        for i in range(1, convs + 1):
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
        names.append(f"pool{block}")
    return names


def vgg_features(arch: str) -> nn.Sequential:
    """An untrained VGG ``features`` stack with torchvision's module indices (so its state dicts load).

    Built here rather than through ``torchvision.models.vgg19()``, which would also allocate and
    initialise the 120M-parameter classifier only to throw it away.
    """
    layers: list[nn.Module] = []
    channels = 3
    for block, convs in enumerate(_VGG_BLOCKS[arch]):
        width = min(64 * 2**block, 512)
        for _ in range(convs):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
        layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGPerceptual(PerceptualNetwork):
    """torchvision VGG-16/19 ``features`` (no classifier), truncated after the deepest layer used."""

    def __init__(
        self,
        arch: str,
        features: nn.Sequential,
        layers: Sequence[str],
        *,
        pretrained: bool,
        weights_source: str,
    ) -> None:
        super().__init__(layers, pretrained=pretrained, weights_source=weights_source)
        self.name = arch
        names = vgg_layer_names(arch)
        unknown = [layer for layer in layers if layer not in names]
        if unknown:
            relus = [n for n in names if n.startswith("relu")]
            raise BadOptionError(f"Unknown {arch} layer(s) {unknown}; choose from {relus}.")
        if not layers:
            raise BadOptionError(f"{arch}: no layers requested.")
        last = max(names.index(layer) for layer in layers)
        # Plain (not in-place) ReLUs in vgg_features(): an in-place ReLU would overwrite a
        # captured conv output, so every layer is safe to request.
        self.features = nn.Sequential(*list(features)[: last + 1])
        self._names = names[: last + 1]
        self._wanted = frozenset(layers)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.freeze()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self._run(x, self._wanted)

    def extract(self, x: torch.Tensor, layers: Collection[str]) -> dict[str, torch.Tensor]:
        # Stops after the deepest of ``layers``: the photos' pass needs only the content layer.
        return self._run(x, frozenset(layers))

    def _run(self, x: torch.Tensor, wanted: frozenset[str]) -> dict[str, torch.Tensor]:
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for name, module in zip(self._names, self.features, strict=True):
            h = module(h)
            if name in wanted:
                out[name] = h
                if len(out) == len(wanted):
                    break
        return out


class VGG19Perceptual(VGGPerceptual):
    default_content_layers = ("relu4_2",)
    default_style_layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class VGG16Perceptual(VGGPerceptual):
    # Johnson et al. 2016: content at relu2_2 (relu3_3 in some follow-ups), style at these four.
    default_content_layers = ("relu2_2",)
    default_style_layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


_VGG_CLASSES: dict[str, type[VGGPerceptual]] = {"vgg19": VGG19Perceptual, "vgg16": VGG16Perceptual}


def _torchvision_weights(arch: str) -> Any:
    from torchvision.models import VGG16_Weights, VGG19_Weights

    return VGG19_Weights.IMAGENET1K_V1 if arch == "vgg19" else VGG16_Weights.IMAGENET1K_V1


def torchvision_cache_path(arch: str) -> Path:
    """Where torchvision's download cache keeps the ImageNet weights of ``arch``."""
    url: str = _torchvision_weights(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def _features_state(state: dict[str, Any], source: str) -> dict[str, torch.Tensor]:
    """Accept a full torchvision VGG state dict (``features.N.*``) or a features-only one (``N.*``)."""
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if any(k.startswith("features.") for k in state):
        return {k[len("features.") :]: v for k, v in state.items() if k.startswith("features.")}
    if all(k.split(".", 1)[0].isdigit() for k in state):
        return dict(state)
    raise WeightsNotFoundError(
        f"{source} is not a VGG state dict (expected keys like 'features.0.weight' or '0.weight')."
    )


def _missing_weights_error(arch: str, detail: str) -> WeightsNotFoundError:
    return WeightsNotFoundError(
        f"No {arch.upper()} ImageNet weights available ({detail}). Pass --vgg-weights FILE "
        f"(or set {VGG_WEIGHTS_ENV}=FILE) with torchvision's {arch} state dict, or put "
        f"'{torchvision_cache_path(arch).name}' into torchvision's cache at {torchvision_cache_path(arch)}. "
        "Offline machines: copy that file from a machine that has it. "
        "Use --loss-network mobilenet to train without VGG weights."
    )


def _named_weights(weights: str | os.PathLike[str] | None) -> tuple[Path, str] | None:
    """The weights file the user named (``--vgg-weights``, then the environment) and where it was named."""
    explicit = weights if weights is not None else settings.get(VGG_WEIGHTS_ENV)
    if explicit is None:
        return None
    return Path(explicit).expanduser(), "--vgg-weights" if weights is not None else VGG_WEIGHTS_ENV


def vgg_weights_on_machine(arch: str, weights: str | os.PathLike[str] | None = None) -> bool:
    """Whether loading ``arch`` needs no download: a file is named (it is used, or the load fails
    with a clear error) or torchvision's cache holds one. Nothing is fetched."""
    return _named_weights(weights) is not None or torchvision_cache_path(arch).is_file()


def _load_vgg_state(
    arch: str, weights: str | os.PathLike[str] | None, download: bool
) -> tuple[dict[str, torch.Tensor], str]:
    named = _named_weights(weights)
    if named is not None:
        path, origin = named
        if not path.is_file():
            raise _missing_weights_error(arch, f"{origin} file {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch.load raises many types for a bad file
            raise WeightsNotFoundError(f"Cannot read VGG weights {path} ({origin}): {exc}") from exc
        if not isinstance(state, dict):
            raise WeightsNotFoundError(f"{path} ({origin}) does not hold a state dict.")
        return _features_state(state, str(path)), str(path)
    cached = torchvision_cache_path(arch)
    if not cached.is_file() and not download:
        raise _missing_weights_error(arch, f"not in the torchvision cache {cached}, downloads disabled")
    try:
        # Reads the cache, or downloads into it (hash-checked) when the machine is online.
        state = _torchvision_weights(arch).get_state_dict(progress=False, check_hash=True)
    except OSError as exc:  # URLError, socket errors, a truncated cache file
        raise _missing_weights_error(arch, f"download failed: {exc}") from exc
    except RuntimeError as exc:  # hash mismatch or a corrupt cache file
        raise _missing_weights_error(arch, f"cached file unusable: {exc}") from exc
    return _features_state(state, str(cached)), f"torchvision cache {cached}"


def network_class(name: str) -> type[PerceptualNetwork]:
    """The class behind a loss-network name, for its defaults (layers, loss weights)."""
    if name == "mobilenet":
        # Lazy: only this loss network needs the trunk module and the shipped arbitrary package.
        from training.perceptual_mobilenet import MobileNetPerceptual

        mobilenet: type[PerceptualNetwork] = MobileNetPerceptual
        return mobilenet
    if name not in _VGG_CLASSES:
        raise BadOptionError(f"Unknown loss network {name!r}; choose from {', '.join(LOSS_NETWORKS)}.")
    return _VGG_CLASSES[name]


def build_loss_network(
    name: str,
    *,
    weights: str | os.PathLike[str] | None = None,
    pretrained: bool = True,
    layers: Sequence[str] | None = None,
    device: str | torch.device = "cpu",
    download: bool = True,
) -> PerceptualNetwork:
    """Build a frozen perceptual network by name ("vgg19" | "vgg16" | "mobilenet").

    ``layers=None`` means the network's default content + style layers. ``pretrained=False``
    gives random weights (unit tests only). ``download=False`` never touches the network: only
    ``weights``, ``$STYLEKIT_VGG_WEIGHTS`` or the torchvision cache are used.
    """
    cls = network_class(name)
    if name == "mobilenet":
        # MobileNetPerceptual takes only the layers: its weights ship with the built-in styles.
        make: Any = cls
        mobilenet: PerceptualNetwork = make(layers=layers)
        return mobilenet.to(device)
    wanted = tuple(layers) if layers is not None else cls.default_content_layers + cls.default_style_layers
    wanted = tuple(dict.fromkeys(wanted))  # de-duplicate, keep order
    features = vgg_features(name)
    if pretrained:
        state, source = _load_vgg_state(name, weights, download)
        try:
            features.load_state_dict(state)
        except RuntimeError as exc:
            raise WeightsNotFoundError(f"{source} does not match torchvision's {name}: {exc}") from exc
        log.info("%s loss network: weights from %s", name, source)
    else:
        source = "random-init (tests only)"
        log.warning("%s loss network is RANDOM-INIT (pretrained=False): tests only, not real styles", name)
    net = _VGG_CLASSES[name](name, features, wanted, pretrained=pretrained, weights_source=source)
    return net.to(device)


__all__ = [
    "LOSS_NETWORKS",
    "VGG_WEIGHTS_ENV",
    "PerceptualNetwork",
    "VGG16Perceptual",
    "VGG19Perceptual",
    "VGGPerceptual",
    "build_loss_network",
    "network_class",
    "torchvision_cache_path",
    "vgg_features",
    "vgg_layer_names",
    "vgg_weights_on_machine",
]
