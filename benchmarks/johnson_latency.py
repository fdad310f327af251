"""Latency of a Johnson et al. (2016) generator: stylekit next to pytorch/examples' TransformerNet.

The peer is pytorch/examples ``fast_neural_style``: its ``TransformerNet`` run the way its
``neural_style.py stylize`` runs it (eager, ``torch.no_grad()``, input scaled to 0..255, PIL in,
PIL out). Its code is **re-typed here from the paper's architecture with pytorch/examples'
layer sizes** (:class:`PeerTransformerNet`: reflection-padded convs with bias, affine instance
norms, 9x9 32 -> 3x3/2 64 -> 3x3/2 128, five residual blocks of 128, nearest 2x upsample +
3x3 conv to 64 and 32, 9x9 conv to RGB, no output activation); ``--peer-path DIR`` imports the
real ``transformer_net.py`` from a pytorch/examples checkout instead (``DIR`` =
``fast_neural_style/neural_style``).

stylekit's side is its own generator (``training.generator.TransformerNet``, width 1, five
residual blocks: the architecture ``stylekit train`` trains), written as a style package with its
pt2 program (``stylekit export --format pt2``). Random weights on both sides: the time of a
forward pass does not depend on them. It runs through the engine with each runner,
``torchscript`` and ``compiled`` (AOTInductor, ``sdk.runners``; compiled first into a
temporary cache, the cold cost printed).

For each size (default 768x512 and 1536x1024) the median of:
- ``model``: the network alone on a [1,3,H,W] float tensor;
- ``public call``: JPEG bytes in, PNG bytes out (stylekit: ``Engine.stylize`` + encode; peer:
  PIL decode, ``ToTensor().mul(255)``, model, ``clamp(0, 255)``, PIL encode, as its script does).
Ratios are stylekit / peer (goal <= 0.5).

    .venv/bin/python benchmarks/johnson_latency.py [--sizes 768x512 1536x1024] [--peer-path DIR]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
sys.path.insert(0, str(REPO))


# --------------------------------------------------------------------------- the peer, re-typed


class PeerConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.conv2d(self.reflection_pad(x))
        return out


class PeerResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = PeerConvLayer(channels, channels, 3, 1)
        self.in1 = nn.InstanceNorm2d(channels, affine=True)
        self.conv2 = PeerConvLayer(channels, channels, 3, 1)
        self.in2 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.in1(self.conv1(x)))
        return self.in2(self.conv2(out)) + x  # type: ignore[no-any-return]


class PeerUpsampleConvLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, upsample: int) -> None:
        super().__init__()
        self.upsample = upsample
        self.reflection_pad = nn.ReflectionPad2d(kernel // 2)
        self.conv2d = nn.Conv2d(c_in, c_out, kernel, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.interpolate(x, mode="nearest", scale_factor=self.upsample)
        out: torch.Tensor = self.conv2d(self.reflection_pad(x))
        return out


class PeerTransformerNet(nn.Module):
    """pytorch/examples' generator, layer for layer (output in 0..255, not squashed)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.in1 = PeerConvLayer(3, 32, 9, 1), nn.InstanceNorm2d(32, affine=True)
        self.conv2, self.in2 = PeerConvLayer(32, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.conv3, self.in3 = PeerConvLayer(64, 128, 3, 2), nn.InstanceNorm2d(128, affine=True)
        self.res = nn.Sequential(*(PeerResidualBlock(128) for _ in range(5)))
        self.deconv1, self.in4 = PeerUpsampleConvLayer(128, 64, 3, 2), nn.InstanceNorm2d(64, affine=True)
        self.deconv2, self.in5 = PeerUpsampleConvLayer(64, 32, 3, 2), nn.InstanceNorm2d(32, affine=True)
        self.deconv3 = PeerConvLayer(32, 3, 9, 1)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.in1(self.conv1(x)))
        y = self.relu(self.in2(self.conv2(y)))
        y = self.relu(self.in3(self.conv3(y)))
        y = self.res(y)
        y = self.relu(self.in4(self.deconv1(y)))
        y = self.relu(self.in5(self.deconv2(y)))
        out: torch.Tensor = self.deconv3(y)
        return out


def load_peer(path: Path | None) -> tuple[nn.Module, str]:
    if path is None:
        return PeerTransformerNet().eval(), "re-typed from the paper with pytorch/examples' layer sizes"
    sys.path.insert(0, str(path))
    from transformer_net import TransformerNet  # type: ignore[import-not-found]

    return TransformerNet().eval(), f"pytorch/examples code read from {path / 'transformer_net.py'}"


# --------------------------------------------------------------------------- timing


def median_seconds(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def photo_jpeg(width: int, height: int) -> tuple[np.ndarray, bytes]:
    from PIL import Image

    path = sorted((DATA / "content").glob("*.jpg"))[0]
    with Image.open(path) as im:
        rgb = np.asarray(im.convert("RGB").resize((width, height), Image.Resampling.BICUBIC))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=92)
    return rgb, buf.getvalue()


def peer_call(model: nn.Module, jpeg: bytes) -> bytes:
    """neural_style.py stylize's steps: PIL load, ToTensor().mul(255), model, clamp, PIL save."""
    from PIL import Image

    with Image.open(io.BytesIO(jpeg)) as im:
        rgb = np.asarray(im.convert("RGB"))
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).mul(255).unsqueeze(0)
    with torch.no_grad():
        y = model(x).cpu()[0]
    img = y.clone().clamp(0, 255).numpy().transpose(1, 2, 0).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    return buf.getvalue()


def measure(photo: tuple[np.ndarray, bytes], peer: nn.Module, bound: dict[str, Any], engines: dict[str, Any],
            style: Any, repeats: int) -> tuple[float, dict[str, float], float, dict[str, float]]:  # fmt: skip
    """Peer and stylekit at one size: model alone, then the public call."""
    from sdk import imaging

    rgb, jpeg = photo
    x = imaging.to_tensor(rgb)
    with torch.no_grad():
        peer_model = median_seconds(lambda: peer(x * 255), repeats)
    model = {}
    with torch.inference_mode():
        for runner, fn in bound.items():
            model[runner] = median_seconds(lambda fn=fn: fn(x), repeats)
    peer_public = median_seconds(lambda: peer_call(peer, jpeg), repeats)
    call = {
        runner: median_seconds(lambda e=e: imaging.encode(e.stylize(jpeg, style), "PNG"), repeats)
        for runner, e in engines.items()
    }
    return peer_model, model, peer_public, call


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=["768x512", "1536x1024"])
    parser.add_argument(
        "--peer-path", type=Path, default=None, help="pytorch/examples fast_neural_style/neural_style"
    )
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    from sdk.allocator import keep_freed_memory
    from sdk.engine import Engine
    from training.artifacts import export_package
    from training.export import export_generator
    from training.generator import TransformerNet

    keep_freed_memory()
    torch.manual_seed(0)
    peer, peer_note = load_peer(args.peer_path)
    work = tempfile.TemporaryDirectory(prefix="stylekit-johnson-")
    os.environ["STYLEKIT_HOME"] = str(Path(work.name) / "home")
    package, _ = export_generator(
        TransformerNet(1.0), name="johnson", out_dir=Path(work.name) / "pkg",
        training={"generator": {"architecture": "johnson2016", "width": 1.0}}, source={}, install=False,
    )  # fmt: skip
    package = export_package(package, ["pt2"])
    start = time.perf_counter()
    Engine("cpu", runner="compiled").load(package)
    cold = time.perf_counter() - start
    engines = {r: Engine("cpu", runner=r) for r in ("torchscript", "compiled")}
    bound = {}
    for runner, engine in engines.items():
        model = engine.load(package)
        assert model.runner == runner, (runner, model.runner)
        bound[runner] = model.bind()  # type: ignore[attr-defined]
    style = package.resolve()

    print(f"Johnson generator latency: stylekit vs pytorch/examples TransformerNet ({peer_note})")
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; medians of {args.repeats}")
    print(f"compiled runner: {cold:.1f} s to compile (cold, once per machine)")
    header = (
        f"{'size':>9} | {'peer model':>10} {'torchscript':>15} {'compiled':>15} | "
        f"{'peer call':>9} {'torchscript':>15} {'compiled':>15}"
    )
    print(header)
    print("-" * len(header))
    worst = {"torchscript": 0.0, "compiled": 0.0}
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        peer_model, model, peer_public, call = measure(photo_jpeg(width, height), peer, bound, engines, style,
                                                       args.repeats)  # fmt: skip
        for runner in worst:
            worst[runner] = max(worst[runner], model[runner] / peer_model)

        def cell(t: float, ref: float) -> str:
            return f"{t * 1e3:>8.0f} ms {t / ref:>4.2f}"

        print(
            f"{size:>9} | {peer_model * 1e3:>7.0f} ms {cell(model['torchscript'], peer_model)} "
            f"{cell(model['compiled'], peer_model)} | {peer_public * 1e3:>6.0f} ms "
            f"{cell(call['torchscript'], peer_public)} {cell(call['compiled'], peer_public)}"
        )
    for runner, ratio in worst.items():
        verdict = "meets" if ratio <= 0.5 else "misses"
        print(f"worst model ratio, {runner}: {ratio:.2f} ({verdict} the goal of <= 0.5)")
    work.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
