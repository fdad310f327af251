"""sdk.engine: style resolution, kinds, options, alpha/EXIF, tiling without seams, batching, devices.

The generators are real (tiny) TorchScript style packages written with sdk.package.write_package,
one per kind, so every path runs the same code as the built-in styles do.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from sdk import imaging
from sdk.devices import resolve_device
from sdk.engine import Engine
from sdk.errors import BadOptionError, DeviceError, InvalidImageError, UnknownStyleError
from sdk.package import (
    InputContract,
    Manifest,
    ResolvedStyle,
    StylePackage,
    SubStyle,
    read_package,
    write_package,
)
from sdk.registry import StyleRegistry, StyleSpec
from sdk.wire import StyleRequest


class TinyFeedforward(nn.Module):
    """Conv, stride-2 down, nearest up, conv: the shape of a real generator, receptive field < 16 px."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 5, padding=2, padding_mode="reflect")
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1, padding_mode="reflect")
        self.c3 = nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        y = torch.relu(self.c2(torch.relu(self.c1(x))))
        return torch.sigmoid(self.c3(nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")))


class TinyInstanceNorm(nn.Module):
    """Instance norm: each tile normalises with its own statistics, so tiles genuinely differ."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect")
        self.norm = nn.InstanceNorm2d(8, affine=True)
        self.c2 = nn.Conv2d(8, 3, 3, padding=1, padding_mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.c2(torch.relu(self.norm(self.c1(x)))))


class TinyMultistyle(nn.Module):
    """Three sub-styles as per-style colour gains and offsets, blended linearly by style_weights."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")
        self.gamma = nn.Parameter(torch.tensor([[2.0, 0.5, 0.5], [0.5, 2.0, 0.5], [0.5, 0.5, 2.0]]))
        self.beta = nn.Parameter(torch.tensor([[0.5, -0.5, -0.5], [-0.5, 0.5, -0.5], [-0.5, -0.5, 0.5]]))

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        gamma = style_weights @ self.gamma
        beta = style_weights @ self.beta
        return torch.sigmoid(self.conv(x) * gamma[:, :, None, None] + beta[:, :, None, None])


class TinyArbitrary(nn.Module):
    """The style vector is the style image's mean colour; transfer pulls the photo toward it."""

    def forward(self, x: Tensor, style_image: Tensor) -> Tensor:
        return self.transfer(x, self.style_vector(style_image))

    @torch.jit.export
    def style_vector(self, style_image: Tensor) -> Tensor:
        return style_image.mean(dim=(2, 3))

    @torch.jit.export
    def transfer(self, x: Tensor, vector: Tensor) -> Tensor:
        return (0.3 * x + 0.7 * vector[:, :, None, None]).clamp(0.0, 1.0)


def _write(module: nn.Module, out: Path, manifest: Manifest) -> StylePackage:
    torch.manual_seed(0)
    for p in module.parameters():
        if p.dim() == 4:  # conv weights: deterministic and not too wild
            nn.init.normal_(p, 0.0, 0.3)
    return write_package(torch.jit.script(module.eval()), out, manifest)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, StylePackage]:
    root = tmp_path_factory.mktemp("packages")
    xyz = tuple(SubStyle(i, c) for i, c in enumerate("xyz"))
    tri = tuple(SubStyle(i, n, aliases=(str(i),)) for i, n in enumerate(("reds", "greens", "blues")))
    return {
        "ff": _write(TinyFeedforward(), root / "ff", Manifest("tiny-ff", "feedforward", "tiny-ff.pt")),
        "inorm": _write(TinyInstanceNorm(), root / "in", Manifest("tiny-in", "feedforward", "tiny-in.pt")),
        "multi": _write(TinyMultistyle(), root / "m", Manifest("tri", "multistyle", "tri.pt", styles=tri)),
        "multi2": _write(
            TinyMultistyle(),
            root / "multi2",
            Manifest("other", "multistyle", "other.pt", styles=xyz),
        ),
        "arb": _write(
            TinyArbitrary(),
            root / "arb",
            Manifest("any", "arbitrary", "any.pt", input=InputContract(style_image_size=64)),
        ),
    }


def _specs(pkg: StylePackage) -> list[StyleSpec]:
    def loader() -> StylePackage:
        return pkg

    m = pkg.manifest
    if m.kind != "multistyle":
        return [StyleSpec(m.name, m.kind, loader)]
    return [
        StyleSpec(s.name, "multistyle", loader, aliases=s.aliases, metadata={"index": s.index})
        for s in m.styles
    ]


@pytest.fixture(scope="module")
def registry(packages: dict[str, StylePackage]) -> StyleRegistry:
    reg = StyleRegistry()
    for pkg in packages.values():
        for spec in _specs(pkg):
            reg.register(spec)
    return reg


class Named:
    """An engine whose styles are named through a registry: the registry resolves, the engine
    runs (as ``sdk.stylize`` does with the default registry). Settings go to the engine."""

    def __init__(self, engine: Named, registry: StyleRegistry) -> None:
        object.__setattr__(self, "engine", engine)
        object.__setattr__(self, "registry", registry)

    def stylize(self, image: Any, style: Any, **options: Any) -> Image.Image:
        return self.engine.stylize(image, self.registry.resolve(style), **options)

    def stylize_batch(self, items: Any, style: Any, **options: Any) -> list[Image.Image]:
        return self.engine.run_batch(items, self.registry.resolve(style), StyleRequest(**options))

    def resolve(self, style: Any) -> ResolvedStyle:
        return self.registry.resolve(style)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self.engine, name, value)


def _named(registry: StyleRegistry, **settings: Any) -> Named:
    return Named(Engine("cpu", **settings), registry)


@pytest.fixture(scope="module")
def engine(registry: StyleRegistry) -> Named:
    return _named(registry)


@pytest.fixture(scope="module")
def photo(content_images: list[Path]) -> Path:
    return content_images[0]


@pytest.fixture(scope="module")
def small_rgb(photos: list[Path]) -> np.ndarray:
    return imaging.decode(photos[3]).rgb


def _direct(pkg: StylePackage, rgb: np.ndarray, *args: Tensor) -> np.ndarray:
    """What the generator itself gives for a whole image: the reference for the engine's output."""
    module = torch.jit.load(str(pkg.model_path))  # type: ignore[no-untyped-call]
    with torch.inference_mode():
        x, pads = imaging.pad_to_multiple(imaging.to_tensor(rgb), pkg.manifest.input.multiple)
        return imaging.to_uint8(imaging.unpad(module(x, *args), pads))


# --------------------------------------------------------------------------- styles and kinds


def test_feedforward_by_path_name_and_spec(
    engine: Named, packages: dict[str, StylePackage], registry: StyleRegistry, small_rgb: np.ndarray
) -> None:
    pkg = packages["ff"]
    want = _direct(pkg, small_rgb)
    json_path = str(pkg.model_path.with_suffix(".json"))
    for style in (str(pkg.model_path), json_path, "tiny-ff", registry.get("tiny-ff")):
        out = engine.stylize(small_rgb, style)
        assert out.mode == "RGB" and out.size == (256, 256)
        assert np.array_equal(np.array(out), want), style
    assert not np.array_equal(want, small_rgb)


def test_output_keeps_odd_sizes_and_respects_max_side(engine: Named, small_rgb: np.ndarray) -> None:
    odd = small_rgb[:131, :203]
    assert engine.stylize(odd, "tiny-ff").size == (203, 131)
    assert engine.stylize(odd, "tiny-ff", max_side=101).size == (101, 65)
    for w, h in ((1, 1), (3, 2), (2, 9)):  # smaller than the padding the model needs
        assert engine.stylize(small_rgb[:h, :w], "tiny-ff").size == (w, h)
    with pytest.raises(BadOptionError, match="max_side"):
        engine.stylize(odd, "tiny-ff", max_side=0)


def test_multistyle_one_hot_alias_and_blends(
    engine: Named, packages: dict[str, StylePackage], small_rgb: np.ndarray
) -> None:
    pkg = packages["multi"]
    greens = _direct(pkg, small_rgb, torch.tensor([[0.0, 1.0, 0.0]]))
    assert np.array_equal(np.array(engine.stylize(small_rgb, "greens")), greens)
    assert np.array_equal(np.array(engine.stylize(small_rgb, "1")), greens)  # index alias
    assert np.array_equal(np.array(engine.stylize(small_rgb, {"greens": 2.0})), greens)
    # Weights are normalised: 1:3 is 0.25/0.75.
    blend = _direct(pkg, small_rgb, torch.tensor([[0.25, 0.0, 0.75]]))
    out = np.array(engine.stylize(small_rgb, {"reds": 1, "blues": 3, "greens": 0}))
    assert np.abs(out.astype(int) - blend).max() <= 1
    assert engine.resolve({"reds": 1, "blues": 3}).weights == (0.25, 0.0, 0.75)
    # The blend differs from either end.
    assert np.abs(out.astype(int) - np.array(engine.stylize(small_rgb, "blues"))).mean() > 2


@pytest.mark.parametrize(
    ("style", "error", "needle"),
    [
        ({"reds": -1, "blues": 2}, BadOptionError, "from 0 to"),
        ({"reds": 0, "blues": 0.0}, BadOptionError, "all zero"),
        ({"tiny-ff": 0}, BadOptionError, "all zero"),
        ({"tiny-ff": -1}, BadOptionError, "from 0 to"),
        ({}, BadOptionError, "at least one"),
        ({"reds": "lots"}, BadOptionError, "number"),
        ({"reds": float("nan")}, BadOptionError, "number"),
        ({"reds": 1, "x": 1}, BadOptionError, "one multistyle network"),
        ({"reds": 1, "tiny-ff": 1}, BadOptionError, "feedforward"),
        ({"reds": 1, "nope": 1}, UnknownStyleError, "nope"),
        ("redz", UnknownStyleError, "reds"),
    ],
)
def test_bad_styles(engine: Named, small_rgb: np.ndarray, style: object, error: type, needle: str) -> None:
    with pytest.raises(error, match=needle):
        engine.stylize(small_rgb, style)  # type: ignore[arg-type]


def test_multistyle_package_path_needs_a_sub_style(engine: Named, packages: dict[str, StylePackage]) -> None:
    with pytest.raises(BadOptionError, match="reds, greens, blues"):
        engine.stylize(np.zeros((8, 8, 3), np.uint8), str(packages["multi"].model_path))


def test_arbitrary_style_image(engine: Named, small_rgb: np.ndarray, tmp_path: Path) -> None:
    red = tmp_path / "red.png"
    Image.new("RGB", (300, 200), (250, 10, 10)).save(red)
    out = np.array(engine.stylize(small_rgb, "any", style_image=red)).astype(float)
    want = np.clip(0.3 * small_rgb + 0.7 * np.array([250, 10, 10]), 0, 255)
    assert np.abs(out - want).max() <= 1.5
    with pytest.raises(BadOptionError, match="needs a style image"):
        engine.stylize(small_rgb, "any")
    with pytest.raises(BadOptionError, match="only an arbitrary style"):
        engine.stylize(small_rgb, "tiny-ff", style_image=red)


# --------------------------------------------------------------------------- options and image modes


def test_strength_and_preserve_color(engine: Named, small_rgb: np.ndarray) -> None:
    assert np.array_equal(np.array(engine.stylize(small_rgb, "reds", strength=0.0)), small_rgb)
    full = np.array(engine.stylize(small_rgb, "reds")).astype(int)
    half = np.array(engine.stylize(small_rgb, "reds", strength=0.5)).astype(int)
    assert np.abs(half - (full + small_rgb) / 2).max() <= 1
    kept = np.array(engine.stylize(small_rgb, "reds", preserve_color=True))
    chroma = {
        name: np.array(Image.fromarray(arr.astype(np.uint8)).convert("YCbCr"))[..., 1:].astype(int)
        for name, arr in (("kept", kept), ("photo", small_rgb), ("full", full))
    }
    assert np.abs(chroma["kept"] - chroma["photo"]).mean() < 3
    assert np.abs(chroma["full"] - chroma["photo"]).mean() > 10
    for bad in (1.2, -0.5, "1"):
        with pytest.raises(BadOptionError, match="strength"):
            engine.stylize(small_rgb, "reds", strength=bad)  # type: ignore[arg-type]
    with pytest.raises(BadOptionError, match="preserve_color"):
        engine.stylize(small_rgb, "reds", preserve_color="yes")  # type: ignore[arg-type]


def test_alpha_is_kept_through_stylize(engine: Named, small_rgb: np.ndarray, tmp_path: Path) -> None:
    alpha = np.tile(np.linspace(0, 255, 256).astype(np.uint8), (256, 1))
    p = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([small_rgb, alpha])).save(p)
    out = engine.stylize(p, "tiny-ff")
    assert out.mode == "RGBA" and np.array_equal(np.array(out)[..., 3], alpha)
    assert np.array_equal(np.array(out)[..., :3], np.array(engine.stylize(small_rgb, "tiny-ff")))


def test_exif_rotated_photo_is_stylized_upright(
    engine: Named, small_rgb: np.ndarray, tmp_path: Path
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / "sideways.jpg"
    Image.fromarray(np.ascontiguousarray(np.rot90(small_rgb[:100]))).save(p, quality=95, exif=exif)
    assert engine.stylize(p, "tiny-ff").size == (256, 100)


def test_decoded_image_input_and_errors_name_the_file(engine: Named, tmp_path: Path, photo: Path) -> None:
    decoded = imaging.decode(photo)
    assert engine.stylize(decoded, "tiny-ff", max_side=64).size == (64, 64)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(photo.read_bytes()[:500])
    with pytest.raises(InvalidImageError, match="broken"):
        engine.stylize(bad, "tiny-ff")


# --------------------------------------------------------------------------- tiling


def _mid_size(photo: Path) -> np.ndarray:
    with Image.open(photo) as im:
        return np.array(im.convert("RGB").resize((700, 500), Image.Resampling.BICUBIC))


def _seam_score(diff: np.ndarray) -> np.ndarray:
    """Per column c of a (tiled - whole) difference image: the step from c to c + 1, relative
    to the steps in the three columns on either side.

    The picture's own texture mostly cancels in the difference; what is left is how tiles
    deviate from the whole-image run. That may drift, but must not jump: a seam is one
    column whose step stands out from its neighbours'.
    """
    steps = np.abs(np.diff(diff, axis=1)).mean(axis=(0, 2))
    padded = np.pad(steps, 3, mode="edge")
    window = np.lib.stride_tricks.sliding_window_view(padded, 7)
    around = (window.sum(axis=1) - steps) / 6
    score: np.ndarray = steps / np.maximum(around, 1e-3)
    return score


def test_tiled_equals_untiled_for_a_conv_generator(registry: StyleRegistry, photo: Path) -> None:
    rgb = _mid_size(photo)
    whole = np.array(_named(registry).stylize(rgb, "tiny-ff")).astype(int)
    tiled_engine = _named(registry, pixel_budget=128 * 128, tile=128, overlap=16)
    tiled_engine.guide_pixels = None  # the tiles alone: a conv net needs no guide
    tiled = np.array(tiled_engine.stylize(rgb, "tiny-ff")).astype(int)
    assert tiled.shape == whole.shape == (500, 700, 3)
    diff = np.abs(tiled - whole)
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_tiles_blend_without_seams(registry: StyleRegistry, photo: Path) -> None:
    """Instance norm makes every tile differ; the ramps must hide where tiles meet."""
    rgb = _mid_size(photo)
    tile, overlap = 160, 32
    whole = np.array(_named(registry).stylize(rgb, "tiny-in")).astype(np.float32)

    def tiled(overlap: int) -> np.ndarray:
        eng = _named(registry, pixel_budget=1, tile=tile, overlap=overlap)
        eng.guide_pixels = None  # the ramps alone
        return np.array(eng.stylize(rgb, "tiny-in")).astype(np.float32) - whole

    # Without overlap (a hard switch mid-way between tiles) the joins show, and the score sees them.
    def middles(overlap: int) -> list[int]:
        spans = imaging.tile_spans(700, tile, overlap, 4)
        return [(s + e) // 2 for (_, e), (s, _) in itertools.pairwise(spans)]

    hard = _seam_score(tiled(0))
    joins = [hard[m - 2 : m + 2].max() for m in middles(0)]
    assert np.mean(joins) > 2.5
    # With ramps, no column where tiles meet stands out from the rest of the picture.
    soft = _seam_score(tiled(overlap))
    ramps = np.concatenate([np.arange(m - overlap // 2 - 1, m + overlap // 2 + 1) for m in middles(overlap)])
    assert soft[ramps].max() < 1.5


def test_guide_keeps_tiles_in_the_whole_pictures_colours(registry: StyleRegistry, photo: Path) -> None:
    """Per-tile normalisation shifts colours region by region; the guide run pulls them back."""
    rgb = _mid_size(photo)
    whole = np.array(_named(registry).stylize(rgb, "tiny-in"))

    def broad(a: np.ndarray) -> np.ndarray:  # the picture at 1/16 size: its broad tones
        return np.array(Image.fromarray(a).resize((44, 31), Image.Resampling.BOX)).astype(float)

    errors = {}
    for guide_pixels in (None, 350 * 250):
        eng = _named(registry, pixel_budget=200 * 200, tile=160, overlap=32)
        eng.guide_pixels = guide_pixels
        out = np.array(eng.stylize(rgb, "tiny-in"))
        errors[guide_pixels] = np.abs(broad(out) - broad(whole)).mean()
    assert errors[350 * 250] < 0.6 * errors[None]


def test_guide_with_the_builtin_network(content_images: list[Path]) -> None:
    """The same on the real 26-style network: tiles drift in colour, the guide pulls them back."""
    pkg = read_package(Path(imaging.__file__).parent / "styles" / "multistyle26.json")
    reg = StyleRegistry()
    for spec in _specs(pkg):
        reg.register(spec)
    with Image.open(content_images[0]) as im:
        rgb = np.array(im.convert("RGB").resize((400, 300), Image.Resampling.BICUBIC))
    style = pkg.manifest.styles[0].name
    eng = _named(reg)
    whole = np.array(eng.stylize(rgb, style))
    eng.pixel_budget, eng.tile, eng.overlap = 160 * 160, 128, 16  # 12 tiles, as for big photos

    def broad(a: np.ndarray) -> np.ndarray:
        return np.array(Image.fromarray(a).resize((25, 19), Image.Resampling.BOX)).astype(float)

    errors = {}
    for guide_pixels in (None, 200 * 150):
        eng.guide_pixels = guide_pixels
        errors[guide_pixels] = np.abs(broad(np.array(eng.stylize(rgb, style))) - broad(whole)).mean()
    assert errors[200 * 150] < 0.8 * errors[None]


# --------------------------------------------------------------------------- batches, cache, threads


def test_stylize_batch_matches_single_runs(registry: StyleRegistry, small_rgb: np.ndarray) -> None:
    items = [imaging.decode(a) for a in (small_rgb, small_rgb[::-1].copy(), small_rgb[:100], small_rgb)]
    eng = _named(registry)
    singles = [np.array(eng.stylize(d, "blues", strength=0.8)) for d in items]
    for batched in (False, True):  # True runs the GPU policy (same-size images as one batch) here
        eng.batch_same_size = batched
        outs = eng.stylize_batch(items, "blues", strength=0.8)
        assert [o.size for o in outs] == [(256, 256), (256, 256), (256, 100), (256, 256)]
        for got, want in zip(outs, singles, strict=True):
            assert np.abs(np.array(got).astype(int) - want).max() <= 1


def test_models_are_cached_and_reloaded_when_the_file_changes(
    registry: StyleRegistry, packages: dict[str, StylePackage], tmp_path: Path
) -> None:
    eng = _named(registry)
    assert eng.load(packages["ff"]) is eng.load(packages["ff"])
    pkg = _write(TinyFeedforward(), tmp_path / "re", Manifest("re", "feedforward", "re.pt"))
    first = eng.load(pkg)
    pkg = _write(TinyInstanceNorm(), tmp_path / "re", Manifest("re", "feedforward", "re.pt"))
    assert eng.load(pkg) is not first


def test_concurrent_stylize_from_threads(registry: StyleRegistry, small_rgb: np.ndarray) -> None:
    eng = _named(registry)
    want = np.array(eng.stylize(small_rgb, "greens"))
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(np.array(eng.stylize(small_rgb, "greens")))
        except BaseException as exc:  # collected and re-checked in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(np.array_equal(r, want) for r in results)


# --------------------------------------------------------------------------- devices and settings


def test_devices() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    auto = resolve_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    if not torch.cuda.is_available():
        assert auto.type in ("cpu", "mps")
        for name in ("cuda", "cuda:0", "CUDA:1"):
            with pytest.raises(DeviceError, match="CUDA is not available"):
                Engine(device=name)
    else:
        with pytest.raises(DeviceError, match="only"):
            Engine(device=f"cuda:{torch.cuda.device_count()}")
    if not torch.backends.mps.is_available():
        with pytest.raises(DeviceError, match="MPS"):
            Engine(device="mps")
    for name in ("gpu", "tpu", "cuda:x", ""):
        with pytest.raises(BadOptionError, match="Unknown device"):
            Engine(device=name)


def test_engine_settings_are_checked() -> None:
    with pytest.raises(BadOptionError, match="CUDA"):
        Engine(device="cpu", half=True)
    assert Engine(device="cpu", half=False).half is False
    with pytest.raises(BadOptionError, match="overlap"):
        Engine(device="cpu", tile=64, overlap=32)
    with pytest.raises(BadOptionError, match="tile"):
        Engine(device="cpu", tile=8)
    with pytest.raises(BadOptionError, match="pixel_budget"):
        Engine(device="cpu", pixel_budget=0)


# -- memory reuse (sdk.allocator) -----------------------------------------------------------

_FAULTS_PER_PASS = """
import resource, sys, torch
import sdk
from sdk import allocator
from sdk.engine import Engine
Engine(device="cpu")  # a library constructor: it must leave the process's allocator alone
assert not allocator.in_effect()
if sys.argv[1] == "keep":
    sdk.keep_freed_memory()

def faults_of_one_pass():  # three 32 MiB activations alive at once, then freed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.empty(8 * 2**20).fill_(1.0) for _ in range(3)]
    del tensors
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

print(allocator.in_effect(), *[faults_of_one_pass() for _ in range(10)])
"""


def _faults_per_pass(env: dict[str, str], choice: str = "keep") -> tuple[bool, list[int]]:
    out = subprocess.run(
        [sys.executable, "-c", _FAULTS_PER_PASS, choice],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    return out[0] == "True", [int(n) for n in out[1:]]


@pytest.mark.skipif(
    not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"), reason="glibc's mallopt only"
)
def test_keep_freed_memory_reuses_memory_for_the_next_pass() -> None:
    """After ``sdk.keep_freed_memory()``, once the heap has grown to fit a pass (a few passes:
    blocks freed by one pass do not always fit the next one's exactly), passes make no page
    faults. An Engine alone, or STYLEKIT_MALLOC=system, leaves the allocator as it was: every
    pass faults its 96 MiB (24576 pages) in again."""
    applied, faults = _faults_per_pass({})
    assert applied and faults[-1] < 1000 and max(faults[5:]) < 1000, faults
    applied, faults = _faults_per_pass({"STYLEKIT_MALLOC": "system"})
    assert not applied and min(faults) > 20_000, faults
    applied, faults = _faults_per_pass({}, choice="engine-only")
    assert not applied and min(faults) > 20_000, faults


def test_the_stylize_command_chooses_memory_reuse(tmp_path: Path, photos: list[Path]) -> None:
    args = ["stylize", str(photos[0]), "-s", "starry-night", "-o", str(tmp_path / "o.png")]
    code = f"from sdk import allocator, cli\nassert cli.main({args!r}) == 0\nprint(allocator.in_effect())\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          timeout=120)  # fmt: skip
    glibc = (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    assert done.stdout.splitlines()[-1] == str(glibc)  # after the line that names the output


def test_a_package_resolves_its_own_names_without_a_registry(packages: dict[str, StylePackage]) -> None:
    single, multi = packages["ff"], packages["multi"]
    assert {single.resolve(style).label for style in (None, "TINY-FF", {"tiny-ff": 2})} == {"tiny-ff"}
    assert multi.resolve({"reds": 1, "2": 3}).weights == (0.25, 0.0, 0.75)  # "2": the alias of blues
    for bad, error in [("reds", UnknownStyleError), ({"tiny-ff": 0}, BadOptionError), (None, BadOptionError),
                       ({"tiny-ff": 1, "x": 1}, UnknownStyleError)]:  # fmt: skip
        with pytest.raises(error):
            (multi if bad is None else single).resolve(bad)  # type: ignore[arg-type]
