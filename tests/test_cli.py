"""``stylekit stylize`` and ``stylekit styles`` end to end: the installed command in a subprocess."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_fixture.stylekit_fixture_plugin import models

import sdk
from sdk.cli import main

STYLEKIT = Path(sys.executable).parent / "stylekit"


def stylekit(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(STYLEKIT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=dict(os.environ),
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, list[str]]:
    """The real dispatcher in this process (torch is loaded already): for the many error cases."""
    rc = main([str(a) for a in args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return rc, captured.out, [line for line in captured.err.splitlines() if line.strip()]


def error_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in done.stderr
    return [line for line in done.stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def negative(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real tiny package: output = 255 - input, so results can be checked pixel by pixel."""
    return models.write_negative(tmp_path_factory.mktemp("pkg")).model_path


@pytest.fixture(scope="module")
def multistyle_names() -> list[str]:
    return [s.name for s in sdk.list_styles() if s.kind == "multistyle" and s.origin == "builtin"]


def assert_negative_of(out: Path, photo: Path) -> None:
    result = np.asarray(Image.open(out).convert("RGB")).astype(np.int16)
    source = np.asarray(Image.open(photo).convert("RGB")).astype(np.int16)
    assert np.abs(result - (255 - source)).max() <= 1


def test_single_file_with_a_builtin_style(
    tmp_path: Path, photos: list[Path], multistyle_names: list[str]
) -> None:
    out = tmp_path / "result.jpg"
    done = stylekit("stylize", photos[0], "-s", multistyle_names[0], "-o", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(out)
    assert error_lines(done) == []
    with Image.open(out) as img, Image.open(photos[0]) as src:
        assert img.format == "JPEG" and img.size == src.size
        diff = np.abs(np.asarray(img.convert("RGB"), np.int16) - np.asarray(src.convert("RGB"), np.int16))
        assert diff.mean() > 20  # painted, not copied


def test_folder_in_folder_out_with_json(tmp_path: Path, photos: list[Path], negative: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(photos[0], src / "a.jpg")
    shutil.copy(photos[1], src / "sub" / "b.jpg")
    (src / "notes.txt").write_text("not an image")
    (src / ".hidden").mkdir()
    shutil.copy(photos[2], src / ".hidden" / "c.jpg")
    out = tmp_path / "out"
    done = stylekit("stylize", src, "-s", negative, "-o", out, "--json", "--format", "webp")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["output"] for r in records] == [
        str(out / "a-negative.webp"),
        str(out / "sub" / "b-negative.webp"),
    ]
    for record, photo in zip(records, photos[:2], strict=True):
        assert record["input"].endswith(".jpg")
        assert record["size"] == list(Image.open(photo).size)
        assert isinstance(record["seconds"], float) and math.isfinite(record["seconds"])
        with Image.open(record["output"]) as img:
            assert img.format == "WEBP"
    assert not (out / ".hidden").exists()


def test_several_files_to_a_folder_and_blend_names(
    tmp_path: Path, photos: list[Path], multistyle_names: list[str]
) -> None:
    a, b = multistyle_names[:2]
    done = stylekit(
        "stylize", photos[0], photos[1], "-s", f"{a}=0.7,{b}=0.3", "--strength", "0.8", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    expected = [f"{p.stem}-{a}+{b}.png" for p in photos[:2]]
    assert done.stdout.split() == expected
    for name in expected:
        assert Image.open(tmp_path / name).size == Image.open(photos[0]).size


def test_arbitrary_style_with_style_image(
    tmp_path: Path, photos: list[Path], style_images: list[Path]
) -> None:
    done = stylekit(
        "stylize",
        photos[0],
        "-s",
        "arbitrary",
        "--style-image",
        style_images[0],
        "--max-side",
        128,
        "-o",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / f"{photos[0].stem}-arbitrary-{style_images[0].stem}.png"
    assert done.stdout.strip() == str(out)
    assert max(Image.open(out).size) == 128


def test_package_file_as_style(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: list[Path], negative: Path
) -> None:
    out = tmp_path / "neg.png"
    rc, stdout, lines = run_main(capsys, "stylize", photos[0], "-s", negative, "-o", out)
    assert (rc, stdout.strip(), lines) == (0, str(out), [])
    assert_negative_of(out, photos[0])


def test_folder_into_the_current_folder_and_an_output_folder_inside_the_input(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    photos: list[Path],
    negative: Path,
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos[0], src / "a.jpg")
    monkeypatch.chdir(tmp_path)
    rc, out, _ = run_main(capsys, "stylize", "in", "-s", negative)
    assert (rc, out.split()) == (0, ["a-negative.png"])
    assert_negative_of(tmp_path / "a-negative.png", photos[0])
    # Results inside the input folder are not taken as inputs on the next run.
    for _ in range(2):
        rc, out, _ = run_main(capsys, "stylize", "in", "-s", negative, "-o", "in/results")
        assert (rc, out.split()) == (0, [str(Path("in/results/a-negative.png"))])


def test_output_clashes_are_refused_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: list[Path], negative: Path
) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    shutil.copy(photos[0], tmp_path / "x" / "p.png")
    shutil.copy(photos[1], tmp_path / "y" / "p.png")
    args = [
        "stylize",
        tmp_path / "x" / "p.png",
        tmp_path / "y" / "p.png",
        "-s",
        negative,
        "-o",
        tmp_path / "o",
    ]
    rc, _, lines = run_main(capsys, *args)
    assert rc == 2 and "would both be written to" in lines[0]
    target = tmp_path / "x" / "p.png"
    rc, _, lines = run_main(capsys, "stylize", target, "-s", negative, "-o", target)
    assert rc == 2 and lines == [
        f"stylekit: error: Refusing to overwrite the input {target} with its result."
    ]


def test_bad_single_input_is_one_line_and_exit_2(tmp_path: Path, negative: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    done = stylekit("stylize", broken, "-s", negative, "-o", tmp_path / "out.png")
    assert done.returncode == 2
    (line,) = error_lines(done)
    assert line.startswith("stylekit: error: ") and "broken.jpg" in line
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "missing.jpg: no such file or directory."), (b"hello", "text"), (b"", "empty")],
    ids=["missing", "text", "empty"],
)
def test_bad_single_inputs_in_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, negative: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "missing.jpg"
    if content is not None:
        path.write_bytes(content)
    rc, out, lines = run_main(capsys, "stylize", path, "-s", negative, "-o", tmp_path / "out.png")
    assert rc == 2 and out == ""
    (line,) = lines
    assert line.startswith("stylekit: error: ") and message in line


def test_mixed_good_and_bad_folder_exits_1_after_doing_the_good_ones(
    tmp_path: Path, photos: list[Path], negative: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(photos[0], src / "good1.jpg")
    (src / "bad.jpg").write_bytes(Path(photos[1]).read_bytes()[:300])  # truncated JPEG
    shutil.copy(photos[2], src / "good2.jpg")
    done = stylekit("stylize", src, "-s", negative, "-o", tmp_path / "out")
    assert done.returncode == 1
    lines = error_lines(done)
    assert len(lines) == 2
    assert lines[0].startswith("stylekit: error: ") and "bad.jpg" in lines[0]
    assert lines[1] == "stylekit: 1 of 3 inputs failed"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "good1-negative.png",
        "good2-negative.png",
    ]
    assert_negative_of(tmp_path / "out" / "good2-negative.png", photos[2])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "no-such-stlye"], "Unknown style 'no-such-stlye'"),
        (["-s", "NEG", "--strength", "1.5"], "--strength must be a number from 0 to 1, not '1.5'"),
        (["-s", "NEG", "--strength", "nan"], "--strength must be a number from 0 to 1, not 'nan'"),
        (["-s", "NEG", "--max-side", "0"], "--max-side must be a whole number from 1 to 20000, not '0'"),
        (["-s", "NEG", "--max-side", "+7"], "--max-side must be a whole number from 1 to 20000, not '+7'"),
        (["-s", "NEG", "--device", "gpu"], "Unknown device 'gpu'"),
        (["-s", "a=x"], "The weight of 'a' must be a number from 0 to 1e+06, not 'x'"),
        (["-s", "arbitrary"], "needs a style image"),
        (["-s", "NEG", "-o", "FILE"], "Several inputs or a folder need a folder for -o"),
    ],
    ids=["unknown-style", "strength", "strength-nan", "max-side", "max-side-plus", "device", "blend",
         "arbitrary-without-image", "output"],
)
def test_option_errors_stop_before_any_image(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    photos: list[Path],
    negative: Path,
    args: list[str],
    message: str,
) -> None:
    named = {"NEG": str(negative), "FILE": str(tmp_path / "out" / "one.png")}
    args = [named.get(a, a) for a in args]
    if "-o" not in args:
        args += ["-o", str(tmp_path / "out")]
    rc, out, lines = run_main(capsys, "stylize", photos[0], photos[1], *args)
    assert rc == 2 and out == ""
    (line,) = lines
    assert line.startswith("stylekit: error: ") and message in line
    assert not (tmp_path / "out").exists()


def test_output_format_must_match_the_file_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, photos: list[Path], negative: Path
) -> None:
    rc, _, lines = run_main(
        capsys, "stylize", photos[0], "-s", negative, "-o", tmp_path / "x.png", "--format", "jpg"
    )
    assert rc == 2 and lines == ["stylekit: error: --format jpg does not match the output file name x.png."]


def test_unreachable_server_is_one_line_and_exit_2(tmp_path: Path, photos: list[Path]) -> None:
    done = stylekit("stylize", photos[0], "-s", "anything", "--server", "http://127.0.0.1:9", cwd=tmp_path)
    assert done.returncode == 2
    (line,) = error_lines(done)
    assert line.startswith("stylekit: error: ")


def test_styles_json_lists_the_builtins() -> None:
    done = stylekit("styles", "--json")
    assert done.returncode == 0, done.stderr
    styles = json.loads(done.stdout)
    multistyle = [s for s in styles if s["kind"] == "multistyle"]
    assert len(multistyle) == 26
    assert sorted(s["index"] for s in multistyle) == list(range(26))
    for s in styles:
        assert set(s) == {
            "name",
            "kind",
            "description",
            "aliases",
            "source",
            "license",
            "origin",
            "package",
            "index",
            "revision",
        }
        assert s["license"] and s["origin"] == "builtin"
    assert any(s["name"] == "arbitrary" and s["kind"] == "arbitrary" for s in styles)


def test_styles_table_with_a_pattern(capsys: pytest.CaptureFixture[str], multistyle_names: list[str]) -> None:
    rc, out, lines = run_main(capsys, "styles", multistyle_names[3])
    assert rc == 0 and lines == []
    header, row = out.splitlines()
    assert header.split()[:3] == ["NAME", "ALIASES", "KIND"]
    assert row.split()[0] == multistyle_names[3] and "multistyle" in row.split()
    rc, out, lines = run_main(capsys, "styles", "no-such-*")
    assert (rc, out, lines) == (0, "", ["stylekit: no style matches 'no-such-*'"])


def test_stylize_keeps_heavy_modules_off_the_shell_path(
    tmp_path: Path, photos: list[Path], negative: Path
) -> None:
    """The shell-speed goal needs torchvision, onnx, training and httpx left unimported.

    (tqdm is not in the list: ``import torch`` brings it in through torch.hub.)
    """
    code = (
        "import sys\nfrom sdk.cli import main\n"
        "rc = main(sys.argv[1:])\n"
        "heavy = ['torchvision', 'onnx', 'onnxruntime', 'training', 'httpx', 'fastapi', 'scipy']\n"
        "print(rc, [m for m in heavy if m in sys.modules])\n"
    )
    args = ["stylize", str(photos[0]), "-s", str(negative), "-o", str(tmp_path / "o.png")]
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=180)
    assert done.stdout.splitlines()[-1] == "0 []", done.stderr


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"stylekit {sdk.__version__} (Python ") and version("stylekit") == sdk.__version__


def test_the_declared_torch_range_starts_where_it_is_tested() -> None:
    """The shipped TorchScript files were written by torch 2.14; that is the lowest version the
    suite runs on, so it is the lowest the package declares (it said 2.4 before)."""
    import re
    from importlib.metadata import requires

    import torch

    torch_req = next(r for r in requires("stylekit") or [] if re.match(r"torch\b(?!vision)", r))
    lower = re.search(r">=\s*([0-9.]+)", torch_req)
    assert lower is not None and torch.__version__.split("+")[0].startswith(lower[1].rstrip(".") + ".")
