"""The engine's runners (sdk.runners): compiled kernels from a package's program, cached per
machine, with TorchScript whenever they are missing, stale or corrupt.

A real AOTInductor compile of a small generator is done once per module (tens of seconds on
2 cores; Inductor's own cache makes the later ones quick) and its cache entry copied where a
test needs one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from test_exports import tiny_package

from sdk import api, imaging, programs, runners
from sdk.engine import Engine
from sdk.errors import BadOptionError
from sdk.package import StylePackage
from training.artifacts import export_package

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def program_package(tmp_path_factory: pytest.TempPathFactory) -> StylePackage:
    """The tiny generator with its pt2 program."""
    return export_package(tiny_package(tmp_path_factory.mktemp("tiny")), ["pt2"])


@pytest.fixture(scope="module")
def compiled_cache(program_package: StylePackage, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder holding the tiny generator's compiled entry (one real compile)."""
    home = tmp_path_factory.mktemp("compiled_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STYLEKIT_HOME", str(home))
        model = Engine("cpu", runner="compiled").load(program_package)
        assert model.runner == "compiled"
    return home / "cache" / "compiled"


@pytest.fixture
def warm_cache(compiled_cache: Path) -> Path:
    """This test's STYLEKIT_HOME with a copy of the compiled entry."""
    root = runners.cache_root()
    shutil.copytree(compiled_cache, root)
    return root


def entry(root: Path) -> Path:
    (found,) = [p for p in root.iterdir() if p.is_dir()]
    return found


def photo(content_images: list[Path], side: int = 200) -> imaging.DecodedImage:
    return imaging.resize_max_side(imaging.decode(content_images[0]), side)


def outputs_agree(a: object, b: object) -> bool:
    x = np.asarray(a, dtype=np.int16)
    y = np.asarray(b, dtype=np.int16)
    return x.shape == y.shape and np.abs(x - y).mean() <= programs.MEAN_BOUND_255 and np.abs(x - y).max() <= 4


def no_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> float:
        raise AssertionError("compiled although the cache had the entry")

    monkeypatch.setattr(runners, "_compile", refuse)


# --------------------------------------------------------------------------- choosing


def test_runner_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Engine("cpu").runner == "auto"
    assert Engine("cpu", runner=" Compiled ").runner == "compiled"
    with pytest.raises(BadOptionError, match="runner must be one of auto, compiled, torchscript"):
        Engine("cpu", runner="tensorrt")
    monkeypatch.setenv("STYLEKIT_RUNNER", "torchscript")
    assert Engine("cpu").runner == "torchscript"
    assert api.engine("cpu") is api.engine("cpu", "torchscript")
    assert api.engine("cpu", "auto") is not api.engine("cpu")
    monkeypatch.setenv("STYLEKIT_RUNNER", "fast")
    with pytest.raises(BadOptionError, match="not 'fast'"):
        Engine("cpu")


def test_cli_runner_flag_is_checked(tmp_path: Path, content_images: list[Path]) -> None:
    def stylize(*flags: str) -> subprocess.CompletedProcess[str]:
        args = [
            "stylize",
            str(content_images[0]),
            "-s",
            "starry-night",
            "-o",
            str(tmp_path / "x.png"),
            *flags,
        ]
        return subprocess.run(
            [sys.executable, "-m", "sdk.cli", *args], capture_output=True, text=True, timeout=120
        )

    done = stylize("--runner", "fast")
    assert done.returncode == 2 and "invalid choice: 'fast'" in done.stderr
    done = stylize("--runner", "compiled", "--server", "http://127.0.0.1:9")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "stylekit: error: --device and --runner apply to local stylization; the server picks its own."
    )


# --------------------------------------------------------------------------- compiled, cached


def test_compiled_matches_torchscript_on_a_photo(
    program_package: StylePackage,
    warm_cache: Path,
    content_images: list[Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    no_compile(monkeypatch)
    fast = Engine("cpu")  # auto: the cache has it
    assert fast.load(program_package).runner == "compiled"
    slow = Engine("cpu", runner="torchscript")
    assert slow.load(program_package).runner == "torchscript"
    style = program_package.resolve()
    image = photo(content_images)
    assert outputs_agree(fast.run(image, style, _request()), slow.run(image, style, _request()))
    meta = json.loads((entry(warm_cache) / "meta.json").read_text())
    assert meta["key"]["torch_version"] == torch.__version__ and meta["checked"]["max_255"] <= 4


def test_compiled_kernels_read_any_input_layout(program_package: StylePackage, warm_cache: Path) -> None:
    """AOTInductor kernels assume contiguous inputs: a permuted view must not be misread."""
    compiled = runners.load_compiled(program_package, torch.device("cpu"), torch.float32, build=False)
    assert compiled is not None
    scripted = program_package.load_module()
    x = torch.rand(1, 64, 96, 3).permute(0, 3, 1, 2)  # an HWC buffer seen as NCHW, as images arrive
    assert not x.is_contiguous()
    with torch.inference_mode():
        assert programs.difference(scripted(x), compiled(x)).within_bound
        batch = torch.rand(3, 3, 40, 52)  # batch and sizes stay free in the program
        assert programs.difference(scripted(batch), compiled(batch)).within_bound


def test_auto_never_compiles(program_package: StylePackage, monkeypatch: pytest.MonkeyPatch) -> None:
    no_compile(monkeypatch)
    assert Engine("cpu").load(program_package).runner == "torchscript"
    assert not runners.cache_root().exists() or not any(runners.cache_root().iterdir())


def test_a_package_without_a_program_runs_torchscript(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    package = tiny_package(tmp_path)
    assert Engine("cpu", runner="compiled").load(package).runner == "torchscript"
    assert "has no pt2 program" in caplog.text
    assert runners.cache_status(package, torch.device("cpu"), torch.float32) == "no-program"


# --------------------------------------------------------------------------- stale, corrupt


def test_a_stale_entry_is_ignored(
    program_package: StylePackage,
    warm_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    meta_file = entry(warm_cache) / "meta.json"
    meta = json.loads(meta_file.read_text())
    meta["key"]["torch_version"] = "2.13.0"  # the entry says another torch made it
    meta_file.write_text(json.dumps(meta))
    no_compile(monkeypatch)
    assert Engine("cpu").load(program_package).runner == "torchscript"
    assert "was made for" in caplog.text
    assert runners.cache_status(program_package, torch.device("cpu"), torch.float32) == "missing"


def test_another_torch_has_another_key(
    program_package: StylePackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = torch.device("cpu")
    key = runners.CacheKey.of(program_package, "forward", cpu, torch.float32)
    monkeypatch.setattr(torch, "__version__", "9.9.9")
    other = runners.CacheKey.of(program_package, "forward", cpu, torch.float32)
    assert key is not None and other is not None and key.digest() != other.digest()
    assert other.digest() != runners.CacheKey.of(program_package, "forward", cpu, torch.float16).digest()  # type: ignore[union-attr]


def test_a_corrupt_library_is_ignored_then_rebuilt(
    program_package: StylePackage, warm_cache: Path, compiled_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library = entry(warm_cache) / "model.pt2"
    library.write_bytes(b"not a library")
    assert Engine("cpu").load(program_package).runner == "torchscript"  # checksum fails
    # The rebuild, with the module's compile standing in for a second one (tens of seconds):
    # what is tested is that the bad entry is replaced, checked and cached again.
    good = entry(compiled_cache) / "model.pt2"
    compiles = []

    def compile_again(package: object, method: str, device: object, dtype: object, out: Path) -> float:
        compiles.append(method)
        shutil.copyfile(good, out)
        return 0.0

    monkeypatch.setattr(runners, "_compile", compile_again)
    model = Engine("cpu", runner="compiled").load(program_package)
    assert compiles == ["forward"]
    assert model.runner == "compiled"
    assert runners.cache_status(program_package, torch.device("cpu"), torch.float32) == "cached"


def test_a_library_that_does_not_load_is_discarded(
    program_package: StylePackage, warm_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    found = entry(warm_cache)
    (found / "model.pt2").write_bytes(b"PK\x03\x04 garbage with a matching checksum")
    meta = json.loads((found / "meta.json").read_text())
    meta["sha256"] = runners.sha256_file(found / "model.pt2")
    (found / "meta.json").write_text(json.dumps(meta))
    assert Engine("cpu").load(program_package).runner == "torchscript"
    assert "do not load" in caplog.text
    assert not found.exists()


def test_an_unreadable_meta_is_ignored(program_package: StylePackage, warm_cache: Path) -> None:
    (entry(warm_cache) / "meta.json").write_text("{not json")
    assert Engine("cpu").load(program_package).runner == "torchscript"


def test_a_failed_compile_falls_back(
    program_package: StylePackage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object) -> float:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(runners, "_compile", broken)
    assert Engine("cpu", runner="compiled").load(program_package).runner == "torchscript"
    assert "compiling tiny failed (no C++ compiler)" in caplog.text
    assert [p.name for p in runners.cache_root().iterdir() if p.is_dir()] == []  # no half entry left


# --------------------------------------------------------------------------- two processes


def test_two_processes_compile_one_entry(program_package: StylePackage, tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
        from sdk.engine import Engine
        from sdk.package import read_package
        package = read_package({str(program_package.root / "tiny.json")!r})
        model = Engine("cpu", runner="compiled").load(package)
        print("RUNNER", model.runner)
    """)
    env = {**os.environ, "STYLEKIT_HOME": str(tmp_path / "home"), "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert all("RUNNER compiled" in out for out in outputs), outputs
    assert sum(out.count("compiling tiny") for out in outputs) == 1, outputs  # the other one waited
    root = tmp_path / "home" / "cache" / "compiled"
    assert len([p for p in root.iterdir() if p.is_dir()]) == 1
    assert not [p for p in root.iterdir() if p.name.startswith((".tmp-", ".trash-"))]


# --------------------------------------------------------------------------- the command


def test_compile_command(program_package: StylePackage, compiled_cache: Path) -> None:
    styles = runners.cache_root().parent.parent / "styles"
    shutil.copytree(program_package.root, styles)  # the user style folder: packages side by side
    shutil.copytree(compiled_cache, runners.cache_root())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Compiling for real is the documented `stylekit compile` (tests/test_installed.py runs it).
    done = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "compile", "tiny", "arbitrary", "--device", "cpu"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "tiny: cached (cpu, float32)"
    assert lines[1] == (
        "arbitrary: no pt2 program, TorchScript runs it (stylekit export arbitrary --format pt2 adds one)"
    )
    assert lines[2] == f"cache: {runners.cache_root()}"
    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "sdk.cli", "compile", "--list"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout
    )
    assert [e["style"] for e in listed] == ["tiny"] and listed[0]["key"]["method"] == "forward"
    done = subprocess.run(
        [sys.executable, "-m", "sdk.cli", "compile", "no-such-style"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("stylekit: error: Unknown style 'no-such-style'")


def _request():  # type: ignore[no-untyped-def]
    from sdk.wire import StyleRequest

    return StyleRequest()


# --------------------------------------------------------------------------- other dtypes, serving


def test_another_dtype_is_traced_again_and_checked(program_package: StylePackage) -> None:
    """A GPU's float16 entry is the program traced again in that dtype (a CPU has no float16
    convolutions, so float64 stands in here): built, checked against TorchScript in the same
    dtype, cached under its own key."""
    cpu = torch.device("cpu")
    reference = program_package.load_module().double()
    compiled = runners.load_compiled(program_package, cpu, torch.float64, build=True, reference=reference)
    assert compiled is not None
    x = imaging.to_tensor(imaging.decode(REPO.parent / "shared" / "data" / "content" / "chicago.jpg").rgb)
    x = torch.nn.functional.interpolate(x, size=(96, 128)).double()
    with torch.inference_mode():
        out = compiled(x)
        assert out.dtype == torch.float64
        assert programs.difference(reference(x), out).within_bound
    assert runners.cache_status(program_package, cpu, torch.float64) == "cached"
    assert runners.cache_status(program_package, cpu, torch.float32) == "missing"


def test_torchserve_serves_with_the_compiled_runner(
    program_package: StylePackage, warm_cache: Path, tmp_path: Path, content_images: list[Path]
) -> None:
    """The handler runs the same engine: with the machine's cache warm, a real TorchServe serves
    the compiled kernels (auto), and says so in its description."""
    from torchserve_support import free_port_block, model_config_dir

    from sdk.client import StyleClient
    from sdk.serving import server
    from sdk.serving.archive import build_archive
    from sdk.wire import StyleRequest

    store = tmp_path / "store"
    build_archive(program_package, store, config_dir=model_config_dir(tmp_path))
    home = runners.cache_root().parent.parent
    state = server.start(
        model_store=store,
        port=free_port_block(5),
        worker_port=free_port_block(4),
        run_dir=tmp_path / "serve",
        env={"STYLEKIT_HOME": str(home)},
        timeout=180,
    )
    try:
        client = StyleClient(state.inference_url, run_dir=state.run_dir, timeout=120)
        assert client.describe("tiny")["stylekit"]["runner"] == "compiled"
        image = photo(content_images)
        png = imaging.encode(imaging.finish(image.rgb, image), "PNG")
        served = imaging.decode(client.send(png, StyleRequest(style="tiny")))
        local = Engine("cpu", runner="torchscript").run(image, program_package.resolve(), _request())
        assert outputs_agree(served.rgb, local)
    finally:
        server.stop(state)
