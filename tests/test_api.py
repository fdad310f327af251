"""``sdk.stylize`` / ``sdk.list_styles`` / ``sdk.get_style``: every call form from the issue.

Built-in styles (the real 26-style network and the arbitrary pair) at the 256x256 test photos,
plus tiny real packages whose outputs can be computed by hand (``plugin_fixture``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from plugin_fixture.stylekit_fixture_plugin import models

import sdk
from sdk import api, imaging
from sdk.api import Backend, StyleInfo
from sdk.client import StyleClient
from sdk.engine import Engine
from sdk.errors import BadOptionError, DeviceError, StylePackageError, UnknownStyleError


@pytest.fixture(scope="module")
def multistyle() -> list[str]:
    return [s.name for s in sdk.list_styles() if s.kind == "multistyle" and s.origin == "builtin"]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packages")
    models.write_negative(root)
    return root


def rgb(img: Image.Image | Path) -> np.ndarray:
    if isinstance(img, Path):
        return imaging.decode(img).rgb.astype(np.int16)
    return np.asarray(img.convert("RGB")).astype(np.int16)


def chroma(a: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(a.astype(np.uint8)).convert("YCbCr"))[..., 1:].astype(np.int16)


def test_path_input_gives_a_painting_of_the_same_size(photos: list[Path], multistyle: list[str]) -> None:
    out = sdk.stylize(photos[0], style=multistyle[0])
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    assert out.size == Image.open(photos[0]).size
    assert np.abs(rgb(out) - rgb(photos[0])).mean() > 20


def test_alias_and_name_give_the_same_image(photos: list[Path], multistyle: list[str]) -> None:
    spec = sdk.get_style(multistyle[4])
    assert np.array_equal(rgb(sdk.stylize(photos[0], style="4")), rgb(sdk.stylize(photos[0], style=spec)))
    assert spec.index == 4


def test_blend_with_strength(photos: list[Path], multistyle: list[str]) -> None:
    img = Image.open(photos[1])
    a, b = multistyle[:2]
    pure_a, pure_b = rgb(sdk.stylize(img, style=a)), rgb(sdk.stylize(img, style=b))
    assert np.array_equal(rgb(sdk.stylize(img, style={a: 1.0, b: 0.0})), pure_a)
    mixed = rgb(sdk.stylize(img, style={a: 0.7, b: 0.3}))
    assert np.abs(mixed - pure_a).mean() > 1 and np.abs(mixed - pure_b).mean() > 1
    faded = rgb(sdk.stylize(img, style={a: 0.7, b: 0.3}, strength=0.8))
    # strength fades toward the photo: 80% of the blend, 20% of the photo.
    expected = 0.8 * mixed + 0.2 * rgb(img)
    assert np.abs(faded - expected).max() <= 2
    assert np.array_equal(rgb(sdk.stylize(img, style=a, strength=0.0)), rgb(img))


def test_preserve_color_keeps_the_photos_chroma(photos: list[Path], multistyle: list[str]) -> None:
    photo = rgb(photos[2])
    plain = rgb(sdk.stylize(photos[2], style=multistyle[5]))
    kept = rgb(sdk.stylize(photos[2], style=multistyle[5], preserve_color=True))
    assert np.abs(chroma(kept) - chroma(photo)).mean() < 0.25 * np.abs(chroma(plain) - chroma(photo)).mean()
    assert np.abs(kept - photo).mean() > 10  # still painted: the luminance is the style's


def test_arbitrary_style_takes_any_picture(photos: list[Path], style_images: list[Path]) -> None:
    first = sdk.stylize(photos[0], style="arbitrary", style_image=style_images[0])
    second = sdk.stylize(photos[0], style="arbitrary", style_image=style_images[1])
    assert first.size == second.size == Image.open(photos[0]).size
    assert np.abs(rgb(first) - rgb(second)).mean() > 5
    with pytest.raises(BadOptionError, match="needs a style image"):
        sdk.stylize(photos[0], style="arbitrary")


def test_package_file_as_style(photos: list[Path], packages: Path) -> None:
    for style in (packages / "negative.pt", str(packages / "negative.json")):
        out = sdk.stylize(photos[0], style=style)
        assert np.abs(rgb(out) - (255 - rgb(photos[0]))).max() <= 1
    with pytest.raises(StylePackageError, match="does not exist"):
        sdk.stylize(photos[0], style=packages / "missing.pt")


def test_max_side_shrinks(photos: list[Path], packages: Path) -> None:
    out = sdk.stylize(photos[0], style=packages / "negative.pt", max_side=100)
    assert max(out.size) == 100


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strength": 1.5}, "strength must be a number from 0 to 1, not 1.5"),
        ({"strength": -0.1}, "strength"),
        ({"strength": "0.5"}, "strength"),
        ({"strength": True}, "strength"),
        ({"max_side": 0}, "max_side must be a whole number from 1 to 20000, not 0"),
        ({"max_side": 2.5}, "max_side"),
        ({"preserve_color": "yes"}, "preserve_color must be True or False"),
        ({"device": "gpu"}, "Unknown device 'gpu'"),
    ],
)
def test_bad_options_raise_bad_option_error(
    photos: list[Path], packages: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(BadOptionError, match=message):
        sdk.stylize(photos[0], style=packages / "negative.pt", **options)  # type: ignore[arg-type]


def test_bad_blends(photos: list[Path], multistyle: list[str]) -> None:
    with pytest.raises(BadOptionError):
        sdk.stylize(photos[0], style={multistyle[0]: -1.0, multistyle[1]: 2.0})
    with pytest.raises(BadOptionError, match="all zero"):
        sdk.stylize(photos[0], style={multistyle[0]: 0.0})
    with pytest.raises(BadOptionError, match="arbitrary"):
        sdk.stylize(photos[0], style={multistyle[0]: 0.5, "arbitrary": 0.5})


def test_unknown_style_suggests_the_close_name(photos: list[Path], multistyle: list[str]) -> None:
    typo = multistyle[0][:-1] + ("x" if multistyle[0][-1] != "x" else "y")
    with pytest.raises(UnknownStyleError, match=f"Did you mean .*'{multistyle[0]}'"):
        sdk.stylize(photos[0], style=typo)


def test_missing_gpu_is_a_device_error(photos: list[Path], packages: Path) -> None:
    import torch

    if torch.cuda.is_available():
        assert sdk.stylize(photos[0], style=packages / "negative.pt", device="cuda").size == (256, 256)
    else:
        with pytest.raises(DeviceError, match="CUDA is not available"):
            sdk.stylize(photos[0], style=packages / "negative.pt", device="cuda")


def test_engines_are_cached_per_device() -> None:
    assert api.engine("cpu") is api.engine("cpu")
    assert api.engine("cpu") is not api.engine("auto")


class _ByName:
    """A backend as StyleClient is one: it takes styles by name (here it stylizes locally)."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def stylize(self, image: object, style: object, **options: object) -> Image.Image:
        self.calls.append(style)
        resolved = sdk.default_registry().resolve(style)  # type: ignore[arg-type]
        return Engine(device="cpu").stylize(image, resolved, **options)  # type: ignore[arg-type]


def test_backend_receives_the_call(photos: list[Path], multistyle: list[str]) -> None:
    """Remote use goes through one protocol (StyleClient implements it); a spec is sent by name."""
    backend = _ByName()
    assert isinstance(backend, Backend)
    assert isinstance(StyleClient("http://127.0.0.1:9"), Backend)
    spec = sdk.get_style(multistyle[2])
    remote = sdk.stylize(photos[0], style=spec, strength=0.5, backend=backend)
    local = sdk.stylize(photos[0], style=multistyle[2], strength=0.5)
    assert np.array_equal(rgb(remote), rgb(local)) and backend.calls == [multistyle[2]]
    for local_only in ({"device": "cpu"}, {"runner": "compiled"}):
        with pytest.raises(BadOptionError, match="device= and runner= apply to local stylization"):
            sdk.stylize(photos[0], style=spec, backend=backend, **local_only)  # type: ignore[arg-type]


def test_list_styles_records(multistyle: list[str]) -> None:
    infos = sdk.list_styles()
    assert all(isinstance(i, StyleInfo) for i in infos)
    assert len(multistyle) == 26
    by_name = {i.name: i for i in infos}
    first = by_name[multistyle[0]]
    assert first.kind == "multistyle" and first.index == 0 and "0" in first.aliases
    assert first.license and first.source and first.origin == "builtin" and first.package
    assert by_name["arbitrary"].kind == "arbitrary"
    data = json.loads(json.dumps([i.to_dict() for i in infos]))
    assert data[0]["name"] == infos[0].name and isinstance(data[0]["aliases"], list)
    assert [i.name for i in sdk.list_styles(multistyle[3])] == [multistyle[3]]
    assert sdk.list_styles("no-such-*") == []


def test_a_style_info_survives_its_json_form(multistyle: list[str]) -> None:
    for info in sdk.list_styles():
        assert StyleInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert sdk.get_style(multistyle[0]) == next(i for i in sdk.list_styles() if i.name == multistyle[0])
