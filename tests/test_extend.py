"""``--extend``: a new style for the built-in 26-style network by training one new CIN row.

Real components throughout: the shipped ``multistyle26`` package, the MobileNet loss network
from the shipped ``arbitrary`` package, photos from ``../shared/data``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import host_paths

import sdk
from sdk.errors import BadOptionError
from sdk.package import read_package
from sdk.settings import user_styles_dir
from sdk.styles import BUILTIN_DIR
from training.checkpoints import load_checkpoint
from training.config import TrainConfig
from training.export import export_checkpoint, export_trained
from training.extend import NewStyleRow, load_multistyle
from training.pretrained.multistyle import MultiStyleNet
from training.trainer import Trainer

BASE = BUILTIN_DIR / "multistyle26.json"


@pytest.fixture(scope="module")
def base_net() -> MultiStyleNet:
    return load_multistyle(read_package(BASE))


@pytest.fixture
def photo_dir(tmp_path: Path, photos: list[Path]) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for p in photos[:8]:
        (folder / p.name).symlink_to(p)
    return folder


def _config(tmp_path: Path, photo_dir: Path, style_images: list[Path], **kw: object) -> TrainConfig:
    style = next(p for p in style_images if p.stem == "wave")
    # One batch holds every photo and crops are centred: each step sees the same images, so
    # the first and last losses are comparable.
    options: dict[str, object] = dict(
        style_image=style, data=photo_dir, name="wave-extended", out=tmp_path / "run", steps=8,
        batch_size=8, image_size=32, loss_network="mobilenet", lr=0.02, random_crop=False,
        log_every=4, tensorboard=False, progress=False, extend="multistyle26",
    )  # fmt: skip
    options.update(kw)
    return TrainConfig(**options)  # type: ignore[arg-type]


def test_only_the_new_row_is_trainable(base_net: MultiStyleNet) -> None:
    model = NewStyleRow(base_net, init_from=3)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable == list(model.rows)
    assert sum(p.numel() for p in trainable) == sum(p.shape[1] for p in base_net.cin_parameters())
    # The new row starts as a copy of style 3; the mean start is the mean of all rows.
    gamma = dict(base_net.named_parameters())["contract.0.gamma"]
    assert torch.equal(model.rows[0], gamma[3])
    mean = NewStyleRow(base_net, init_from=None)
    assert torch.allclose(mean.rows[0], gamma.mean(0))
    # Rendering the new row as it starts reproduces style 3 exactly.
    x = torch.rand(1, 3, 32, 32)
    weights = torch.zeros(1, base_net.num_styles)
    weights[0, 3] = 1.0
    with torch.no_grad():
        assert torch.equal(model(x), base_net(x, weights))
    assert base_net.num_styles == 26


def test_extend_trains_one_row_and_exports_a_27_style_package(
    tmp_path: Path,
    photo_dir: Path,
    style_images: list[Path],
    content_images: list[Path],
    base_net: MultiStyleNet,
) -> None:
    # The one training loop (resume, DDP, signals), with the new row as what it trains.
    trainer = Trainer(_config(tmp_path, photo_dir, style_images, extend_init="closest"))
    result = trainer.fit()
    pkg, installed = export_trained(trainer)
    assert trainer.extension is not None
    init = trainer.extension.init
    assert trainer.extension.row.index == 26 and init.startswith("closest:")
    assert result.steps == 8 and not result.interrupted
    assert result.losses["total"] < trainer.first_losses["total"]
    assert result.losses["style"] < trainer.first_losses["style"]

    # The package: run folder and user folder, 27 rows, only the new style named.
    assert pkg.root == tmp_path / "run" and pkg.manifest.kind == "multistyle"
    assert [(s.index, s.name) for s in pkg.manifest.styles] == [(26, "wave-extended")]
    assert installed is not None and installed.root == user_styles_dir()
    assert pkg.manifest.training is not None and pkg.manifest.training["base"] == "multistyle26"
    assert pkg.manifest.training["initial_losses"] == trainer.first_losses
    assert host_paths(json.loads((pkg.root / "wave-extended.json").read_text())) == []  # names, no host paths
    row_size = sum(p.shape[1] for p in base_net.cin_parameters())
    assert pkg.manifest.training["trained_parameters"] == row_size == 990
    extended = load_multistyle(pkg)
    assert extended.num_styles == 27

    # Only the new row changed: every convolution and the 26 old rows are bit-identical.
    new_state, old_state = extended.state_dict(), base_net.state_dict()
    for key, old in old_state.items():
        if key.endswith((".gamma", ".beta")):
            assert torch.equal(new_state[key][:26], old), key
        else:
            assert torch.equal(new_state[key], old), key
    init_index = next(
        s.index for s in read_package(BASE).manifest.styles if init == f"closest:{s.name}"
    )
    assert not torch.equal(new_state["contract.0.gamma"][26], old_state["contract.0.gamma"][init_index])

    # The old 26 styles render bit-identically through the exported TorchScript.
    module, base_module = pkg.load_module(), read_package(BASE).load_module()
    x = torch.rand(26, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        old_out = base_module(x, torch.eye(26))
        new_out = module(x, torch.eye(27)[:26])
    assert torch.equal(old_out, new_out)

    # The new style is a registered style: by name (installed) and by the package file.
    out = sdk.stylize(content_images[0], style="wave-extended", max_side=64, device="cpu")
    assert max(out.size) == 64
    pixels = np.asarray(out)
    assert pixels.std() > 5  # a picture, not a flat image
    by_path = sdk.stylize(content_images[0], style=str(pkg.model_path), max_side=64, device="cpu")
    assert np.array_equal(np.asarray(by_path), pixels)


def test_extend_rejects_a_base_that_is_not_multistyle(
    tmp_path: Path, photo_dir: Path, style_images: list[Path]
) -> None:
    with pytest.raises(BadOptionError, match="multistyle"):
        Trainer(_config(tmp_path, photo_dir, style_images, extend=str(BUILTIN_DIR / "arbitrary.json")))
    with pytest.raises(BadOptionError, match="extend-init"):
        _config(tmp_path, photo_dir, style_images, extend_init="random")
    with pytest.raises(BadOptionError, match="adversarial"):
        _config(tmp_path, photo_dir, style_images, adversarial_weight=0.1)


def _rows(package_path: Path) -> torch.Tensor:
    state = load_multistyle(read_package(package_path)).state_dict()
    return torch.cat([t[26] for k, t in sorted(state.items()) if k.endswith((".gamma", ".beta"))])


def test_an_extend_run_resumes_where_it_stopped(tmp_path: Path, photo_dir: Path,
                                                style_images: list[Path]) -> None:  # fmt: skip
    """What the one loop gives --extend: 4 steps straight equal 2 steps, then 2 more resumed."""

    def trainer(folder: str, steps: int, **kw: object) -> Trainer:
        out = tmp_path / folder
        return Trainer(_config(out, photo_dir, style_images, steps=steps, install=False, out=out, **kw))

    straight = trainer("a", 4)
    straight.fit()
    export_trained(straight)
    first = trainer("b", 2)
    first.fit()
    resumed = trainer("b", 4, resume=True)
    assert resumed.step == 2 and resumed.extension is not None and first.extension is not None
    assert resumed.extension.init == first.extension.init
    resumed.fit()
    export_trained(resumed)
    expected = _rows(tmp_path / "a" / "wave-extended.json")
    assert torch.equal(_rows(tmp_path / "b" / "wave-extended.json"), expected)
    # `stylekit export` of an extend checkpoint writes the same network again.
    checkpoint = tmp_path / "b" / "checkpoints" / "last.pt"
    assert load_checkpoint(checkpoint)["extend"]["base"] == "multistyle26"
    again, _ = export_checkpoint(checkpoint, out_dir=tmp_path / "c", install=False)
    assert torch.equal(_rows(again.root / "wave-extended.json"), expected)
    # ...and the losses of the run's first step, carried through the resume and the checkpoint.
    assert read_package(again.root / "wave-extended.json").manifest.training["initial_losses"] == (
        read_package(tmp_path / "a" / "wave-extended.json").manifest.training["initial_losses"])  # fmt: skip
