"""Training library: generator, loss networks, losses, data, trainer, export, CLIs, DDP.

Offline: the VGG-19 here is RANDOM-INIT (a features state dict written by the fixture
``random_vgg19``), so these tests check the machinery (losses fall, resume is exact, export
round-trips), not the taste of the styles. Sizes are tiny (64 px crops, width 0.25).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torchvision
from conftest import host_paths

import sdk
from sdk import imaging
from sdk.cli import main as stylekit_main
from sdk.devices import cpu_native_bf16
from sdk.errors import InvalidImageError, TrainingError, WeightsNotFoundError
from sdk.package import read_package, sha256_file
from training.checkpoints import load_checkpoint
from training.config import TrainConfig
from training.data import ImageFolderDataset, ResumableSampler, find_images
from training.export import export_checkpoint, export_trained
from training.generator import TransformerNet, count_parameters
from training.loss_networks import VGG_WEIGHTS_ENV, VGGPerceptual, build_loss_network, vgg_layer_names
from training.losses import gram_matrix, total_variation
from training.trainer import Trainer, resolve_amp

REPO = Path(__file__).resolve().parents[1]

# Loss weights for a random-init VGG, whose features are far smaller than ImageNet-trained ones.
RANDOM_VGG_WEIGHTS = {"content_weight": 1.0, "style_weight": 1e6, "tv_weight": 1.0}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Any:
    """One intra-op thread: these tiny convolutions gain nothing from two, and on a loaded
    2-core machine OpenMP threads spinning against other processes make steps ~8x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def random_vgg19(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RANDOM-INIT VGG-19 features state dict (seeded): the offline stand-in for ImageNet weights."""
    path = tmp_path_factory.mktemp("vgg") / "vgg19-features-RANDOM-INIT-for-tests.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.vgg19().features.state_dict(), path)
    return path


def link_photos(photos: list[Path], folder: Path, count: int) -> Path:
    """A small data folder of symlinks (the shared images are never copied)."""
    folder.mkdir(parents=True, exist_ok=True)
    for photo in photos[:count]:
        (folder / photo.name).symlink_to(photo)
    return folder


def tiny_config(data: Path, style: Path, out: Path, vgg: Path, **overrides: Any) -> TrainConfig:
    options: dict[str, Any] = {
        "style_image": style,
        "data": data,
        "name": "tiny",
        "out": out,
        "steps": 4,
        "batch_size": 2,
        "image_size": 64,
        "width": 0.25,
        "lr": 1e-2,
        "vgg_weights": vgg,
        "download": False,
        "install": False,
        "tensorboard": False,
        "progress": False,
        "checkpoint_every": 1000,
        "log_every": 1,
        **RANDOM_VGG_WEIGHTS,
    }
    options.update(overrides)
    return TrainConfig(**options)


@pytest.fixture(scope="module")
def trained_run(
    tmp_path_factory: pytest.TempPathFactory, data_dir: Path, style_images: list[Path], random_vgg19: Path
) -> tuple[TrainConfig, Any]:
    """One short run shared by the tests that need a trained checkpoint (no install: see tests)."""
    out = tmp_path_factory.mktemp("run")
    cfg = tiny_config(
        data_dir / "photos", style_images[0], out, random_vgg19,
        steps=24, checkpoint_every=12, tensorboard=True,
    )  # fmt: skip
    trainer = Trainer(cfg)
    result = trainer.fit()
    return cfg, (result, *export_trained(trainer))


# ----- generator ----------------------------------------------------------------------------


def test_generator_keeps_size_range_and_scripts() -> None:
    torch.manual_seed(0)
    net = TransformerNet(width=0.25).eval()
    x = torch.rand(2, 3, 36, 52)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    scripted = torch.jit.script(net)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), y)
    # The width multiplier scales channels, so parameters fall roughly with its square.
    full, slim = count_parameters(TransformerNet(1.0)), count_parameters(TransformerNet(0.25))
    assert 1.6e6 < full < 1.8e6 and full / slim > 12
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())


# ----- loss networks ------------------------------------------------------------------------


def test_vgg_is_frozen_truncated_and_returns_requested_layers(random_vgg19: Path) -> None:
    net = build_loss_network("vgg19", weights=random_vgg19, layers=["relu1_1", "relu3_1"], download=False)
    assert isinstance(net, VGGPerceptual)
    assert net.pretrained and net.weights_source == str(random_vgg19)
    names = vgg_layer_names("vgg19")
    assert len(net.features) == names.index("relu3_1") + 1  # nothing after the deepest layer
    net.train()
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    out = net(torch.rand(1, 3, 32, 32))
    assert set(out) == {"relu1_1", "relu3_1"}
    assert out["relu1_1"].shape == (1, 64, 32, 32) and out["relu3_1"].shape == (1, 256, 8, 8)
    # Normalisation is inside: the first conv sees (x - mean) / std.
    x = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = torch.relu(net.features[0]((x - mean) / std))
    torch.testing.assert_close(net(x)["relu1_1"], expected)
    assert torch.equal(net.extract(x, ["relu1_1"])["relu1_1"], net(x)["relu1_1"])

    vgg16 = build_loss_network("vgg16", pretrained=False)
    assert not vgg16.pretrained and "random" in vgg16.weights_source.lower()
    assert set(vgg16(torch.rand(1, 3, 32, 32))) == {"relu1_2", "relu2_2", "relu3_3", "relu4_3"}


def test_missing_vgg_weights_name_flag_env_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache
    monkeypatch.delenv(VGG_WEIGHTS_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError) as err:
        build_loss_network("vgg19", download=False)
    message = str(err.value)
    assert "--vgg-weights" in message and VGG_WEIGHTS_ENV in message
    assert str(tmp_path / "torch" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in message

    with pytest.raises(WeightsNotFoundError, match=r"--vgg-weights file .*missing\.pth does not exist"):
        build_loss_network("vgg19", weights=tmp_path / "missing.pth")
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(tmp_path / "env-missing.pth"))
    with pytest.raises(WeightsNotFoundError, match=rf"{VGG_WEIGHTS_ENV} file .*env-missing\.pth"):
        build_loss_network("vgg19")
    (tmp_path / "junk.pth").write_bytes(b"not a state dict")
    with pytest.raises(WeightsNotFoundError, match="Cannot read VGG weights"):
        build_loss_network("vgg19", weights=tmp_path / "junk.pth")


def test_cli_reports_missing_vgg_weights(
    tmp_path: Path, photos: list[Path], style_images: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code = stylekit_main([
        "train", "--style-image", str(style_images[0]), "--data", str(photos[0].parent),
        "--name", "x", "--out", str(tmp_path / "run"), "--vgg-weights", str(tmp_path / "nope.pth"),
    ])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("stylekit: error: ") and "--vgg-weights" in err and VGG_WEIGHTS_ENV in err


# ----- losses -------------------------------------------------------------------------------


def test_gram_and_total_variation() -> None:
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)  # C=2, H*W=2
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    torch.testing.assert_close(gram_matrix(f), expected)
    assert gram_matrix(f.bfloat16()).dtype == torch.float32
    # The channels_last path (the trainer's layout) gives the same Gram and the same gradient.
    torch.manual_seed(0)
    x = torch.randn(2, 8, 5, 3, dtype=torch.float64)
    last = x.contiguous(memory_format=torch.channels_last).requires_grad_()
    plain = x.clone().requires_grad_()
    assert not last.is_contiguous()
    for t in (last, plain):
        (gram_matrix(t) * torch.arange(64.0, dtype=torch.float64).reshape(8, 8)).sum().backward()
    torch.testing.assert_close(gram_matrix(last), gram_matrix(plain))
    torch.testing.assert_close(last.grad, plain.grad)
    assert float(total_variation(torch.full((1, 3, 8, 8), 0.3))) == 0.0
    stripes = torch.zeros(1, 1, 4, 4)
    stripes[..., ::2] = 1.0  # vertical stripes: every horizontal neighbour differs by 1
    assert float(total_variation(stripes)) == pytest.approx(1.0)


# ----- data ---------------------------------------------------------------------------------


def _corrupt_folder(photos: list[Path], folder: Path) -> tuple[Path, list[Path]]:
    link_photos(photos, folder / "train2014", 3)
    broken = folder / "train2014" / "broken.jpg"
    broken.write_bytes(b"this is not a jpeg at all" * 10)
    truncated = folder / "val" / "truncated.jpg"
    truncated.parent.mkdir()
    truncated.write_bytes(photos[3].read_bytes()[:300])
    (folder / "README.txt").write_text("not an image, not even considered")
    return folder, sorted([broken, truncated])


def test_dataset_skips_unreadable_files(tmp_path: Path, photos: list[Path]) -> None:
    data, bad = _corrupt_folder(photos, tmp_path / "data")
    files = find_images(data)
    assert len(files) == 5 and all(f.suffix == ".jpg" for f in files)
    with pytest.raises(InvalidImageError):
        imaging.decode(bad[0])
    dataset = ImageFolderDataset(files, 64)
    sample = dataset[(files.index(bad[0]), 1)]
    assert sample.image.shape == (3, 64, 64) and str(bad[0]) in sample.skipped


def test_sampler_is_sharded_shuffled_and_resumable() -> None:
    full = list(ResumableSampler(10, seed=3, batch_size=2))
    assert sorted(i for i, _ in full) == list(range(10)) and [i for i, _ in full] != list(range(10))
    resumed = ResumableSampler(10, seed=3, batch_size=2)
    resumed.set_epoch(0, start=4)
    assert list(resumed) == full[4:]
    shards = [list(ResumableSampler(10, seed=3, rank=r, world_size=2, batch_size=2)) for r in (0, 1)]
    assert not {i for i, _ in shards[0]} & {i for i, _ in shards[1]}
    nxt = ResumableSampler(10, seed=3, batch_size=2)
    nxt.set_epoch(1)
    assert [i for i, _ in nxt] != [i for i, _ in full]


def test_trainer_counts_skipped_files(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    data, bad = _corrupt_folder(photos, tmp_path / "data")
    # One batch of 5 visits every file once.
    cfg = tiny_config(data, style_images[1], tmp_path / "run", random_vgg19, steps=1, batch_size=5)
    trainer = Trainer(cfg)
    result = trainer.fit()
    assert result.steps == 1 and result.skipped_files == [str(p) for p in bad]
    assert load_checkpoint(cfg.checkpoint_path)["skipped_files"] == [str(p) for p in bad]
    package, _ = export_trained(trainer)
    assert package.manifest.training is not None and package.manifest.training["skipped_files"] == 2


# ----- trainer ------------------------------------------------------------------------------


def test_amp_auto_is_bf16_only_where_the_cpu_has_it() -> None:
    cpu = torch.device("cpu")
    # Emulated bf16 (AVX-512 without BF16) is slower than float32: auto stays in float32 there.
    assert resolve_amp("auto", cpu) == (torch.bfloat16 if cpu_native_bf16() else None)
    assert resolve_amp("bf16", cpu) == torch.bfloat16 and resolve_amp("off", cpu) is None
    if not torch.cpu._is_avx512_bf16_supported() and not torch.cpu._is_amx_tile_supported():
        assert not cpu_native_bf16()


def test_losses_go_down(trained_run: tuple[TrainConfig, Any]) -> None:
    cfg, (result, _, _) = trained_run
    assert load_checkpoint(cfg.checkpoint_path)["config"]["amp"] == "auto"
    totals = [h["total"] for h in result.history]
    assert len(totals) == 24 and all(np.isfinite(totals))
    first, last = np.mean(totals[:6]), np.mean(totals[-6:])
    assert last < 0.6 * first, totals
    styles = [h["style"] for h in result.history]
    assert np.mean(styles[-6:]) < np.mean(styles[:6])
    assert list((cfg.run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_resume_is_bit_for_bit(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    data = link_photos(photos, tmp_path / "data", 6)  # batch 2: 3 steps per epoch
    # bf16 asked for by name: "auto" is float32 on a CPU without native bf16, and this keeps the
    # bf16 path (emulated or not) under test.
    straight = tiny_config(data, style_images[2], tmp_path / "a", random_vgg19, amp="bf16", steps=5)
    Trainer(straight).fit()
    # Stop after 2 steps, then resume across the epoch boundary (step 3) to step 5.
    Trainer(tiny_config(data, style_images[2], tmp_path / "b", random_vgg19, amp="bf16", steps=2)).fit()
    resumed = tiny_config(
        data, style_images[2], tmp_path / "b", random_vgg19, amp="bf16", steps=5, resume=True
    )
    trainer = Trainer(resumed)
    assert trainer.step == 2
    trainer.fit()
    a, b = load_checkpoint(straight.checkpoint_path), load_checkpoint(resumed.checkpoint_path)
    position = ("step", "epoch", "epoch_position")
    assert [a[k] for k in position] == [b[k] for k in position] == [5, 1, 4]
    for key, tensor in a["generator"].items():
        assert torch.equal(tensor, b["generator"][key]), key
    for pid, state in a["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, b["optimizer"]["state"][pid][key])
    assert a["losses"]["total"] == b["losses"]["total"]

    changed = tiny_config(
        data, style_images[2], tmp_path / "b", random_vgg19, amp="bf16", steps=6, resume=True, lr=0.5
    )
    with pytest.raises(sdk.errors.BadOptionError, match="lr"):
        Trainer(changed)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    # An absurd learning rate blows the weights up after the first update.
    cfg = tiny_config(photos[0].parent, style_images[3], tmp_path / "run", random_vgg19,
                      steps=6, lr=1e30, checkpoint_every=1)  # fmt: skip
    with pytest.raises(TrainingError, match=r"non-finite at step 2.*last good checkpoint"):
        Trainer(cfg).fit()
    ckpt = load_checkpoint(cfg.checkpoint_path)
    assert ckpt["step"] == 1
    assert all(torch.isfinite(t).all() for t in ckpt["generator"].values())
    assert not (cfg.run_dir / "tiny.pt").exists()


def test_adversarial_term_trains_a_patch_critic(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    data = link_photos(photos, tmp_path / "data", 4)
    cfg = tiny_config(data, style_images[6], tmp_path / "run", random_vgg19, steps=3, adversarial_weight=0.5)
    trainer = Trainer(cfg)
    assert trainer.discriminator is not None
    before = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    result = trainer.fit()
    for h in result.history:
        assert np.isfinite(h["adversarial"]) and np.isfinite(h["discriminator"])
        assert h["total"] >= h["adversarial"] * 0.5
    saved = load_checkpoint(cfg.checkpoint_path)
    assert any(not torch.equal(before[k], v) for k, v in saved["discriminator"].items())
    assert saved["disc_optimizer"]["state"]


def test_sigterm_writes_a_checkpoint(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "training", "-v", "--style-image", str(style_images[0]),
        "--data", str(photos[0].parent), "--name", "sig", "--out", str(out), "--steps", "100000",
        "--batch-size", "1", "--image-size", "32", "--width", "0.25", "--vgg-weights", str(random_vgg19),
        "--no-download", "--no-install", "--no-tensorboard", "--no-progress", "--log-every", "1",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    deadline = time.monotonic() + 120
    stepped = False
    for line in proc.stderr:
        # The log line is "step 2/100000: ..."; the deadline only guards a run that never logs.
        stepped = stepped or line.startswith("step 2/") or " step 2/" in line
        if stepped or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGTERM)
    rest = proc.stderr.read()
    assert stepped, rest
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM, rest
    assert "SIGTERM received: saving a checkpoint" in rest
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] >= 2
    assert not (out / "sig.pt").exists()  # interrupted runs are not exported


# ----- export -------------------------------------------------------------------------------


def test_export_round_trips_and_stylizes(
    trained_run: tuple[TrainConfig, Any], content_images: list[Path], tmp_path: Path
) -> None:
    cfg, (result, package, installed) = trained_run
    assert package is not None and installed is None  # the fixture ran with install=False
    _, installed = export_checkpoint(cfg.checkpoint_path, name="tiny-export", out_dir=tmp_path)
    assert installed is not None and installed.root == Path(os.environ["STYLEKIT_HOME"]) / "styles"

    pkg = read_package(tmp_path / "tiny-export.json")
    m = pkg.manifest
    # The package travels (plugins, .mar files): it records names and digests, never host paths.
    assert host_paths(json.loads((tmp_path / "tiny-export.json").read_text())) == []
    assert m.training is not None and m.training["style_image"]["file"] == cfg.style_image.name
    assert m.training["style_image"]["sha256"] == sha256_file(cfg.style_image)
    assert (m.name, m.kind, m.model_file) == ("tiny-export", "feedforward", "tiny-export.pt")
    assert m.input.multiple == 4
    assert m.source["file"] == cfg.style_image.name
    assert m.training is not None and m.training["steps"] == 24
    assert m.training["final_losses"]["total"] == pytest.approx(result.losses["total"])
    assert m.training["config"]["image_size"] == 64 and m.training["loss_network"]["name"] == "vgg19"
    assert set(m.files) == {"tiny-export.pt", "tiny-export.style.jpg"}
    assert imaging.decode(tmp_path / "tiny-export.style.jpg").size[0] <= 256

    module = pkg.load_module()  # checks the sha256 of every file
    eager = TransformerNet(cfg.width)
    eager.load_state_dict(load_checkpoint(cfg.checkpoint_path)["generator"])
    x = torch.rand(1, 3, 44, 60)
    with torch.no_grad():
        torch.testing.assert_close(module(x), eager.eval()(x), atol=1e-5, rtol=0)

    photo = content_images[0]
    by_name = sdk.stylize(photo, "tiny-export", device="cpu", max_side=160)
    assert "tiny-export" in [s.name for s in sdk.list_styles()]
    by_file = sdk.stylize(photo, str(tmp_path / "tiny-export.pt"), device="cpu", max_side=160)
    assert by_name.size == by_file.size == imaging.resize_max_side(imaging.decode(photo), 160).size
    assert np.array_equal(np.asarray(by_name), np.asarray(by_file))
    assert np.asarray(by_name).std() > 1.0  # an image, not a flat colour


def test_cli_train_then_stylize_and_export(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path,
    content_images: list[Path], capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    data = link_photos(photos, tmp_path / "data", 4)
    out = tmp_path / "run"
    code = stylekit_main([
        "train", "--style-image", str(style_images[4]), "--data", str(data), "--name", "cli-style",
        "--out", str(out), "--steps", "2", "--batch-size", "2", "--image-size", "32", "--width", "0.25",
        "--vgg-weights", str(random_vgg19), "--no-download", "--no-progress", "--no-tensorboard",
        "--content-weight", "1", "--style-weight", "1e6", "--tv-weight", "1",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    printed = capsys.readouterr().out
    assert "trained 2 steps" in printed and "installed as style 'cli-style'" in printed
    assert (out / "cli-style.pt").is_file()
    assert (Path(os.environ["STYLEKIT_HOME"]) / "styles" / "cli-style.json").is_file()

    result_png = tmp_path / "stylized.png"
    code = stylekit_main([
        "stylize", str(content_images[1]), "--style", "cli-style", "-o", str(result_png),
        "--max-side", "96", "--device", "cpu",
    ])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert max(imaging.decode(result_png).size) == 96

    code = stylekit_main([
        "export", str(out / "checkpoints" / "last.pt"), "--name", "cli-copy", "--out", str(tmp_path / "exp"),
        "--no-install", "--format", "pt2",
    ])  # fmt: skip
    assert code == 0
    exported = read_package(tmp_path / "exp" / "cli-copy.pt")
    assert exported.manifest.training["steps"] == 2  # type: ignore[index]
    assert exported.artifact("pt2") == tmp_path / "exp" / "cli-copy.pt2"  # beside TorchScript, verified
    assert exported.manifest.artifacts["cli-copy.pt2"].verified is not None
    assert not (Path(os.environ["STYLEKIT_HOME"]) / "styles" / "cli-copy.json").exists()


# ----- distributed --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, port: int, cfg_dict: dict[str, Any], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE="2")  # fmt: skip
    torch.set_num_threads(1)
    trainer = Trainer(TrainConfig.from_dict(cfg_dict))
    try:
        result = trainer.fit()
        torch.save(
            {"generator": trainer.generator.state_dict(), "checkpoint": result.checkpoint},
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        trainer.close()


@pytest.mark.slow  # two fresh Python processes importing torch: ~15-35 s on 2 cores
def test_ddp_two_gloo_ranks_stay_identical(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    data = link_photos(photos, tmp_path / "data", 8)
    cfg = tiny_config(data, style_images[5], tmp_path / "run", random_vgg19, steps=3, device="cpu",
                      image_size=32)  # fmt: skip
    torch.multiprocessing.spawn(  # type: ignore[attr-defined, no-untyped-call]
        _ddp_worker, args=(_free_port(), cfg.to_dict(), str(tmp_path)), nprocs=2, join=True
    )
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    for key, tensor in r0["generator"].items():
        assert torch.equal(tensor, r1["generator"][key]), key
    # The ranks trained on different shards: equal weights mean the gradients were averaged.
    # Only rank 0 writes.
    assert r0["checkpoint"] == cfg.checkpoint_path and r1["checkpoint"] is None
    ckpt = load_checkpoint(cfg.checkpoint_path)
    assert ckpt["step"] == 3 and np.isfinite(ckpt["losses"]["total"])
    for key, tensor in ckpt["generator"].items():
        assert torch.equal(tensor, r0["generator"][key])


def test_training_progress_without_a_terminal_is_one_line_per_log_step(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    """Not a terminal (a log file, CI): no carriage-return bar, one readable line per --log-every."""
    data = link_photos(photos, tmp_path / "data", 4)
    cmd = [sys.executable, "-m", "sdk.cli", "train", "--style-image", str(style_images[4]),
           "--data", str(data), "--name", "logged", "--out", str(tmp_path / "run"), "--steps", "3",
           "--batch-size", "2",
           "--image-size", "32", "--width", "0.25", "--vgg-weights", str(random_vgg19), "--no-download",
           "--no-tensorboard", "--no-install", "--log-every", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr
    steps = re.findall(r"step (\d+)/3: total [0-9.e+-]+, content .*images/s", done.stderr)
    assert steps == ["1", "2", "3"], done.stderr[-2000:]


# ----- distillation, held-out scores, best checkpoint ---------------------------------------


def test_distillation_from_the_arbitrary_teacher(
    tmp_path: Path, photos: list[Path], style_images: list[Path], random_vgg19: Path
) -> None:
    data = link_photos(photos, tmp_path / "data", 4)  # batch 2: 2 steps per epoch
    cfg = tiny_config(data, style_images[0], tmp_path / "run", random_vgg19, steps=4, random_crop=False,
                      distill_weight=2.0)  # fmt: skip
    trainer = Trainer(cfg)
    result = trainer.fit()
    assert trainer.teacher is not None
    assert all("distill" in h for h in result.history) and result.history[0]["distill"] > 0
    # Centre crops repeat every epoch: each photo's target was computed once.
    assert (trainer.teacher.misses, trainer.teacher.hits) == (4, 4)
    # The weight is part of what a resume must match.
    with pytest.raises(sdk.errors.BadOptionError, match="distill_weight"):
        Trainer(tiny_config(data, style_images[0], tmp_path / "run", random_vgg19, steps=5, random_crop=False,
                            distill_weight=1.0, resume=True))  # fmt: skip
    with pytest.raises(sdk.errors.BadOptionError, match="distill-weight"):
        tiny_config(data, style_images[0], tmp_path / "x", random_vgg19, distill_weight=-1.0)


def test_held_out_scores_and_the_best_checkpoint(
    tmp_path: Path,
    photos: list[Path],
    style_images: list[Path],
    random_vgg19: Path,
    content_images: list[Path],
) -> None:
    data = link_photos(photos, tmp_path / "data", 4)
    with pytest.raises(sdk.errors.BadOptionError, match="--eval-photos"):
        tiny_config(data, style_images[1], tmp_path / "x", random_vgg19, keep_best=True)
    cfg = tiny_config(data, style_images[1], tmp_path / "run", random_vgg19, steps=4, checkpoint_every=2,
                      eval_photos=content_images[0], keep_best=True)  # fmt: skip
    trainer = Trainer(cfg)
    trainer.fit()
    assert [h["step"] for h in trainer.eval_history] == [2.0, 4.0]
    best = max(trainer.eval_history, key=lambda h: h["quality"])
    assert trainer.best == best
    saved = load_checkpoint(cfg.best_checkpoint_path)
    assert saved["step"] == best["step"] and saved["best"] == best
    assert load_checkpoint(cfg.checkpoint_path)["best"] == best  # a resume keeps comparing against it


def test_offline_default_recipe_without_a_download(
    tmp_path: Path, photos: list[Path], style_images: list[Path], monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    from training.recipes import EXTEND_LR, OFFLINE, OFFLINE_STEPS, resolve_recipe

    monkeypatch.delenv(VGG_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty torchvision cache

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    data = link_photos(photos, tmp_path / "data", 2)
    cfg = TrainConfig(style_image=style_images[4], data=data, name="offline", out=tmp_path / "run",
                      steps=1, batch_size=2, image_size=64, install=False, tensorboard=False,
                      progress=False)  # fmt: skip
    assert cfg.loss_network == "auto" and cfg.lr is None
    with caplog.at_level("WARNING", logger="training.recipes"):
        trainer = Trainer(cfg)
    chosen = trainer.config
    assert (chosen.loss_network, chosen.extend, chosen.distill_weight) == (
        OFFLINE["loss_network"], OFFLINE["extend"], OFFLINE["distill_weight"]
    )
    assert chosen.lr == EXTEND_LR and trainer.teacher is not None and trainer.extension is not None
    assert "offline recipe" in caplog.text and "--loss-network vgg19" in caplog.text
    trainer.fit()
    assert load_checkpoint(chosen.checkpoint_path)["config"]["loss_network"] == "mobilenet"

    # A GPU, or weights on this machine: Johnson et al.'s VGG-19 recipe, as before.
    assert resolve_recipe(cfg, torch.device("cuda")).loss_network == "vgg19"
    monkeypatch.setenv(VGG_WEIGHTS_ENV, str(tmp_path / "vgg.pth"))
    johnson = resolve_recipe(cfg, torch.device("cpu"))
    assert (johnson.loss_network, johnson.extend, johnson.distill_weight) == ("vgg19", None, 0.0)
    assert johnson.lr == 1e-3
    monkeypatch.delenv(VGG_WEIGHTS_ENV)
    assert resolve_recipe(dataclasses.replace(cfg, steps=None), torch.device("cpu")).steps == OFFLINE_STEPS
    # Asked for by name, nothing is changed.
    named = dataclasses.replace(cfg, loss_network="mobilenet")
    assert resolve_recipe(named, torch.device("cpu")).extend is None
