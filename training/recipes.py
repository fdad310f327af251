"""Which recipe ``--loss-network auto`` (the default) trains with.

Johnson et al.'s recipe (a new generator against VGG-19) wherever it can work well: on a GPU,
or when the VGG-19 weights are on this machine (``--vgg-weights``, ``STYLEKIT_VGG_WEIGHTS`` or
torchvision's cache). On a CPU without them, nothing is downloaded: the offline recipe
(:data:`OFFLINE`), measured with ``stylekit eval`` on photos the training never saw
(``docs/offline_training.md``) as the best result for a few CPU minutes: one new row of the
built-in ``multistyle26`` network against the MobileNet loss network, distilled from the
built-in arbitrary network. The log says which recipe was chosen and why.
"""

from __future__ import annotations

import dataclasses
import logging

import torch

from training.config import TrainConfig
from training.loss_networks import vgg_weights_on_machine

log = logging.getLogger(__name__)

#: What the offline recipe sets (each only where the user left it unset).
OFFLINE = {"loss_network": "mobilenet", "extend": "multistyle26", "distill_weight": 2000.0}
#: Its length when neither --steps nor --epochs is given: a new row settles in a few hundred
#: steps, where two epochs of a small photo folder would be a few dozen.
OFFLINE_STEPS = 150
#: Adam's learning rate when --lr is unset: a generator, and the ~1k numbers of a new row.
DEFAULT_LR, EXTEND_LR = 1e-3, 1e-2


def resolve_recipe(config: TrainConfig, device: torch.device) -> TrainConfig:
    """``config`` with ``loss_network`` and ``lr`` made concrete (see the module docstring)."""
    changes: dict[str, object] = {}
    if config.loss_network == "auto":
        if device.type != "cpu" or vgg_weights_on_machine("vgg19", config.vgg_weights):
            changes["loss_network"] = "vgg19"
        else:
            changes["loss_network"] = OFFLINE["loss_network"]
            if config.extend is None:
                changes["extend"] = OFFLINE["extend"]
            if config.distill_weight == 0.0:
                changes["distill_weight"] = OFFLINE["distill_weight"]
            if config.steps is None and config.epochs is None:
                changes["steps"] = OFFLINE_STEPS
    if config.lr is None:
        extend = changes.get("extend", config.extend)
        changes["lr"] = EXTEND_LR if extend is not None else DEFAULT_LR
    resolved = dataclasses.replace(config, **changes) if changes else config  # type: ignore[arg-type]
    if config.loss_network == "auto" and resolved.loss_network == OFFLINE["loss_network"]:
        length = f"--steps {resolved.steps}" if resolved.steps else f"--epochs {resolved.epochs}"
        flags = (f"--loss-network mobilenet --extend {resolved.extend} "
                 f"--distill-weight {resolved.distill_weight:g} {length}")  # fmt: skip
        log.warning(
            "No VGG-19 weights on this machine and no GPU: training with the offline recipe (%s, "
            "--lr %g), the best measured for a few CPU minutes (docs/offline_training.md). For "
            "Johnson et al.'s VGG-19 recipe pass --loss-network vgg19 (downloads the weights) or "
            "--vgg-weights FILE.", flags, resolved.lr,
        )  # fmt: skip
    return resolved


__all__ = ["DEFAULT_LR", "EXTEND_LR", "OFFLINE", "OFFLINE_STEPS", "resolve_recipe"]
