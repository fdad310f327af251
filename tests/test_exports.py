"""Style packages beyond TorchScript: ``pt2`` and ONNX files, verified when written (training.artifacts).

Every format is checked here on real photos from ../shared/data against the TorchScript file
(which reproduces the eager network), with the bound of sdk.programs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sdk import imaging, programs
from sdk.errors import BadOptionError, StylePackageError
from sdk.package import Artifact, Manifest, read_package
from sdk.styles import BUILTIN_DIR
from training.artifacts import copy_package, eager_network, export_package, parse_formats
from training.export import export_generator
from training.generator import TransformerNet

REPO = Path(__file__).resolve().parents[1]


def tiny_package(root: Path, name: str = "tiny"):  # type: ignore[no-untyped-def]
    """A small Johnson generator (random weights: the machinery, not the taste) as a package."""
    torch.manual_seed(0)
    net = TransformerNet(0.125, residual_blocks=1)
    package, _ = export_generator(
        net,
        name=name,
        out_dir=root,
        training={"generator": {"architecture": "johnson2016", "width": 0.125}},
        source={},
        install=False,
    )
    return package


def photo_inputs(content_images: list[Path], multiple: int, side: int = 256) -> list[torch.Tensor]:
    tensors = []
    for path in content_images[:3]:
        rgb = imaging.resize_max_side(imaging.decode(path), side).rgb
        x, _ = imaging.pad_to_multiple(imaging.to_tensor(rgb), multiple)
        tensors.append(x)
    return tensors


def test_parse_formats() -> None:
    assert parse_formats(["all"]) == ("torchscript", "pt2", "onnx")
    assert parse_formats(["onnx,pt2"]) == ("pt2", "onnx")
    assert parse_formats(["PT2", "pt2"]) == ("pt2",)
    assert parse_formats([]) == ("torchscript",)
    with pytest.raises(BadOptionError, match="Unknown export format 'tflite'"):
        parse_formats(["tflite"])


def test_multistyle_pt2_and_onnx_round_trip_on_photos(tmp_path: Path, content_images: list[Path]) -> None:
    builtin = read_package(BUILTIN_DIR / "multistyle26.json")
    package = export_package(builtin, ["pt2", "onnx"], out_dir=tmp_path, photos=content_images[:2])
    package.verify()  # every new file is pinned by sha256
    arts = package.manifest.artifacts
    assert {a.format for a in arts.values()} == {"torchscript", "pt2", "onnx"}
    for file, art in arts.items():
        assert art.torch == torch.__version__ or art.format == "torchscript"
        assert art.verified is not None and art.verified["images"][1:] == [p.name for p in content_images[:2]]
        assert art.verified["max_255"] <= programs.MAX_BOUND_255, file
    assert arts["multistyle26.onnx"].opset == 18

    # What a consumer does with each file, on photos the export did not see, batch and sizes free.
    scripted = package.load_module()
    program = torch.export.load(str(package.artifact("pt2"))).module()
    import onnxruntime as ort

    session = ort.InferenceSession(str(package.artifact("onnx")), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "style_weights"]
    for x in photo_inputs(content_images[2:], 4):
        batch = torch.cat([x, x.flip(-1)])
        weights = torch.zeros(2, 26)
        weights[0, 19], weights[1, 3], weights[1, 7] = 1.0, 0.5, 0.5
        want = scripted(batch, weights)
        assert programs.difference(want, program(batch, weights)).within_bound
        got = torch.from_numpy(
            session.run(None, {"image": batch.numpy(), "style_weights": weights.numpy()})[0]
        )
        assert programs.difference(want, got).within_bound


def test_feedforward_all_formats_and_manifest_round_trip(tmp_path: Path, content_images: list[Path]) -> None:
    package = export_package(tiny_package(tmp_path), ["all"], photos=content_images[:1])
    again = read_package(package.root / "tiny.json")
    assert again.manifest.artifacts == package.manifest.artifacts
    assert again.artifact("pt2") == tmp_path / "tiny.pt2"
    assert again.artifact("onnx") == tmp_path / "tiny.onnx"
    assert again.artifact("torchscript") == tmp_path / "tiny.pt"
    program = torch.export.load(str(again.artifact("pt2"))).module()
    scripted = again.load_module()
    for x in photo_inputs(content_images, 4, side=200):
        assert programs.difference(scripted(x), program(x)).within_bound


def test_arbitrary_exports_one_program_per_method(
    tmp_path: Path, content_images: list[Path], style_images: list[Path]
) -> None:
    package = export_package(read_package(BUILTIN_DIR / "arbitrary.json"), ["pt2"], out_dir=tmp_path)
    style_vector, transfer = package.artifact("pt2", "style_vector"), package.artifact("pt2", "transfer")
    assert style_vector is not None and style_vector.name == "arbitrary.style_vector.pt2"
    assert transfer is not None and transfer.name == "arbitrary.transfer.pt2"
    # Each program holds only its half of the weights.
    assert transfer.stat().st_size < package.model_path.stat().st_size / 3
    scripted = package.load_module()
    style = imaging.to_tensor(imaging.decode(style_images[0]).rgb)
    style = torch.nn.functional.interpolate(style, size=(256, 256), mode="bilinear", antialias=True)
    vector = torch.export.load(str(style_vector)).module()(style)
    assert programs.difference(scripted.style_vector(style), vector).within_bound
    x = photo_inputs(content_images, 4)[0]
    got = torch.export.load(str(transfer)).module()(x, vector)
    assert programs.difference(scripted.transfer(x, vector), got).within_bound


def test_a_file_past_the_bound_is_not_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tiny_package(tmp_path)
    before = (tmp_path / "tiny.json").read_bytes()
    monkeypatch.setattr(programs, "MAX_BOUND_255", -1.0)  # nothing can meet it
    with pytest.raises(StylePackageError, match="differs from the eager network"):
        export_package(package, ["pt2"])
    assert (tmp_path / "tiny.json").read_bytes() == before
    assert not (tmp_path / "tiny.pt2").exists()


def test_an_unknown_architecture_is_refused_by_name(tmp_path: Path) -> None:
    package = tiny_package(tmp_path)
    package.manifest.training = {"generator": {"architecture": "cyclegan"}}
    with pytest.raises(StylePackageError, match=r"not one stylekit can rebuild.*'cyclegan'"):
        eager_network(package)


def test_weights_of_another_shape_are_refused(tmp_path: Path) -> None:
    package = tiny_package(tmp_path)
    package.manifest.training = {"generator": {"architecture": "johnson2016", "width": 1.0}}
    with pytest.raises(StylePackageError, match="do not fit the TransformerNet network"):
        eager_network(package)


def test_manifest_artifacts_are_checked() -> None:
    with pytest.raises(StylePackageError, match="Unknown model file format 'tflite'"):
        Artifact("tflite")
    with pytest.raises(StylePackageError, match="plain file name"):
        Manifest(name="x", kind="feedforward", model_file="x.pt", artifacts={"../x.pt2": Artifact("pt2")})
    old = json.loads((BUILTIN_DIR / "arbitrary.json").read_text())
    old.pop("artifacts", None)  # a manifest from before the field: TorchScript only
    manifest = Manifest.from_dict(old)
    assert manifest.artifacts == {}


def test_an_unpinned_file_is_never_an_artifact(tmp_path: Path) -> None:
    package = copy_package(read_package(BUILTIN_DIR / "multistyle26.json"), tmp_path)
    package.manifest.files.pop("multistyle26.pt2")
    assert package.artifact("pt2") is None  # the file is there, but the manifest no longer pins it
    assert (tmp_path / "multistyle26.pt2").is_file()


def test_builtin_network_ships_its_program() -> None:
    package = read_package(BUILTIN_DIR / "multistyle26.json")
    package.verify()
    art = package.manifest.artifacts["multistyle26.pt2"]
    assert art.format == "pt2" and art.method == "forward" and art.torch
    assert art.verified is not None and len(art.verified["images"]) >= 2  # the sample and real photos


# --------------------------------------------------------------------------- the command


def stylekit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sdk.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_cli_exports_a_package_in_place(tmp_path: Path, content_images: list[Path]) -> None:
    tiny_package(tmp_path)
    done = stylekit(
        "export",
        str(tmp_path / "tiny.json"),
        "--format",
        "pt2",
        "--format",
        "onnx",
        "--photo",
        str(content_images[0]),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["torchscript", "pt2", "onnx"]
    assert all("/255)" in line for line in lines)
    assert read_package(tmp_path / "tiny.json").artifact("onnx") is not None


def test_cli_refuses_to_change_an_installed_style(tmp_path: Path) -> None:
    done = stylekit("export", "multistyle26", "--format", "pt2")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"stylekit: error: Style 'multistyle26' is installed with stylekit ({BUILTIN_DIR}); "
        "give --out DIR to write an exported copy."
    ]
    done = stylekit("export", "starry-night", "--format", "tflite", "--out", str(tmp_path))
    assert done.returncode == 2 and "Unknown export format 'tflite'" in done.stderr
    assert not any(tmp_path.iterdir())


def test_cli_exports_a_registered_style_by_a_sub_style_name(tmp_path: Path) -> None:
    done = stylekit("export", "starry-night", "--format", "pt2", "--out", str(tmp_path / "copy"))
    assert done.returncode == 0, done.stderr
    copy = read_package(tmp_path / "copy" / "multistyle26.json")
    copy.verify()
    assert copy.artifact("pt2") is not None
    original = np.frombuffer((BUILTIN_DIR / "multistyle26.pt").read_bytes(), np.uint8)
    assert np.array_equal(np.frombuffer(copy.model_path.read_bytes(), np.uint8), original)
