"""Training throughput: our Trainer against a plain baseline, side by side, in one run.

- ``baseline``: the loop as pytorch/examples ``fast_neural_style`` writes it: eager float32,
  default (NCHW) memory format; per step the generator runs, then the VGG on the generated
  batch and again on the photos, losses from those features, backward, Adam step; style Grams
  computed once before the loop (as the example does).
- ``ours``: ``training.trainer.Trainer.train_step``: the same generator, the same VGG-19
  truncated at the same layer (relu5_1), the same losses and weights, with bf16 autocast where
  the CPU has native bf16 (AVX-512-BF16 here), ``channels_last``, and the photos' features
  computed without autograd.

Both start from the same generator weights and see the same pre-decoded batches (data loading
is not what is measured), and their steps are interleaved one by one, so a change in load on
this shared machine hits both alike. Printed: images/s of each, the ratio, and the final
losses of both (mean of the last quarter of the steps), to show the speed does not cost
optimisation progress.

Both loops run in this one process, so both get what ``Trainer`` sets up for the process on
the CPU: freed memory kept for reuse (``sdk.allocator``), worth about 15% to each here.

The VGG-19 is RANDOM-INIT (ImageNet weights cannot be downloaded here): its cost is that of
the real network, its losses are not; the loss weights are set for a random VGG's scale.

    nice -n 10 .venv/bin/python benchmarks/train_throughput.py [--steps 12] [--image-size 256] \\
        [--batch-size 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from training.config import TrainConfig  # noqa: E402
from training.data import ImageFolderDataset, collate, find_images, load_image  # noqa: E402
from training.generator import TransformerNet  # noqa: E402
from training.loss_networks import build_loss_network, vgg_features  # noqa: E402
from training.losses import total_variation  # noqa: E402
from training.trainer import Trainer  # noqa: E402

DATA = Path(os.environ.get("STYLEKIT_TEST_DATA", REPO.parent / "shared" / "data"))
WEIGHTS = {"content_weight": 1.0, "style_weight": 1e6, "tv_weight": 1.0}  # for a random VGG
LR = 1e-3


def baseline_gram(y: torch.Tensor) -> torch.Tensor:
    b, ch, h, w = y.size()
    features = y.view(b, ch, w * h)
    return features.bmm(features.transpose(1, 2)) / (ch * h * w)


class Baseline:
    """The pytorch/examples fast_neural_style training step, same network and objective as ours."""

    def __init__(
        self, generator: TransformerNet, vgg_file: Path, style: torch.Tensor, trainer: Trainer
    ) -> None:
        self.transformer = generator
        self.optimizer = torch.optim.Adam(generator.parameters(), LR)
        loss = trainer.loss
        self.content_layers, self.style_layers = loss.content_layers, loss.style_layers
        self.vgg = build_loss_network(
            "vgg19", weights=vgg_file, layers=[*self.content_layers, *self.style_layers], download=False
        )
        self.gram_style = [baseline_gram(self.vgg(style)[layer]) for layer in self.style_layers]

    def step(self, x: torch.Tensor) -> float:
        n_batch = len(x)
        self.optimizer.zero_grad()
        y = self.transformer(x)
        features_y = self.vgg(y)
        features_x = self.vgg(x)
        content_loss = WEIGHTS["content_weight"] * sum(
            F.mse_loss(features_y[layer], features_x[layer]) for layer in self.content_layers
        )
        style_loss = torch.zeros(())
        for layer, gm_s in zip(self.style_layers, self.gram_style, strict=True):
            gm_y = baseline_gram(features_y[layer])
            style_loss += F.mse_loss(gm_y, gm_s[:n_batch].expand_as(gm_y))
        style_loss *= WEIGHTS["style_weight"]
        total_loss: torch.Tensor = content_loss + style_loss + WEIGHTS["tv_weight"] * total_variation(y)
        total_loss.backward()  # type: ignore[no-untyped-call]
        self.optimizer.step()
        return float(total_loss.detach())


def timed(fn: Callable[[torch.Tensor], float], x: torch.Tensor) -> tuple[float, float]:
    start = time.perf_counter()
    loss = fn(x)
    return time.perf_counter() - start, loss


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=12, help="timed steps per arm (after 1 warm-up step)")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--style", default="starry_night.jpg")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        vgg_file = Path(tmp) / "vgg19-features-RANDOM-INIT.pth"
        torch.manual_seed(0)
        torch.save(vgg_features("vgg19").state_dict(), vgg_file)
        cfg = TrainConfig(
            style_image=DATA / "styles" / args.style, data=DATA / "photos", name="bench",
            out=Path(tmp) / "run",
            batch_size=args.batch_size, image_size=args.image_size, vgg_weights=vgg_file, download=False,
            install=False, tensorboard=False, progress=False, lr=LR,
            content_weight=WEIGHTS["content_weight"], style_weight=WEIGHTS["style_weight"],
            tv_weight=WEIGHTS["tv_weight"],
        )  # fmt: skip
        ours = Trainer(cfg)
        generator = TransformerNet(cfg.width)
        generator.load_state_dict(ours.generator.state_dict())  # same starting weights
        style_img = load_image(cfg.style_image, size=cfg.style_size or cfg.image_size)
        baseline = Baseline(generator, vgg_file, style_img, ours)

        files = find_images(cfg.data)
        dataset = ImageFolderDataset(files, cfg.image_size)
        batches = [
            collate([dataset[(i * args.batch_size + j, i * 100 + j)] for j in range(args.batch_size)])[0]
            for i in range(args.steps + 1)
        ]
        print(
            f"training step, {args.image_size} px, batch {args.batch_size}, {args.steps} timed steps per "
            f"arm, {torch.get_num_threads()} threads, CPU {torch.backends.cpu.get_cpu_capability()}"
        )
        print("loss network: VGG-19 features, RANDOM-INIT (no ImageNet weights offline): real cost, no taste")
        print(f"ours: amp={ours.amp_dtype}, channels_last={cfg.channels_last}; baseline: float32, NCHW")

        def ours_step(x: torch.Tensor) -> float:
            losses = ours.train_step(x)
            assert losses is not None
            return float(losses["total"].detach())

        times: dict[str, list[float]] = {"baseline": [], "ours": []}
        losses: dict[str, list[float]] = {"baseline": [], "ours": []}
        for i, x in enumerate(batches):
            for name, step in (("baseline", baseline.step), ("ours", ours_step)):
                seconds, loss = timed(step, x)
                if i > 0:  # step 0 is warm-up (oneDNN primitive creation, allocator)
                    times[name].append(seconds)
                    losses[name].append(loss)

    tail = max(1, args.steps // 4)
    rate = {k: args.batch_size * len(v) / sum(v) for k, v in times.items()}
    for name in ("baseline", "ours"):
        print(
            f"{name:>8}: {rate[name]:6.2f} img/s  (median step {statistics.median(times[name]):.2f} s)  "
            f"final loss {statistics.mean(losses[name][-tail:]):.4g}  first loss {losses[name][0]:.4g}"
        )
    print(f"ratio ours/baseline: {rate['ours'] / rate['baseline']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
