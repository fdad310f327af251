"""``stylekit plugin new``: the distribution it writes, installed by a real pip and served by a
real TorchServe, and a plugin style served under the identity it has locally.

The installed plugin goes into a ``--target`` folder put on ``PYTHONPATH`` of fresh processes
(as ``pip install`` into a venv would, without touching the test environment); pip builds it
from its ``pyproject.toml`` like any user's ``pip install ./NAME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tomllib
from PIL import Image
from plugin_fixture.stylekit_fixture_plugin import models
from torchserve_support import Served, model_config_dir, running_torchserve

import sdk
from sdk import imaging
from sdk.errors import BadOptionError, StylePackageError
from sdk.info import StyleInfo
from sdk.package import StylePackage, read_package
from sdk.plugin import new_plugin
from sdk.registry import StyleSpec, as_registered, register_style
from sdk.serving.archive import build_archive, packages_for

BIN = Path(sys.executable).parent


def trained_like(root: Path, name: str = "my-negative") -> Path:
    """A feedforward package as an older training run left it: no license, host paths in its record."""
    pkg = models.write_negative(root, name)
    manifest = json.loads((root / f"{name}.json").read_text())
    manifest["source"] = {"file": "wave.jpg", "attribution": "trained with stylekit from wave.jpg"}
    manifest["training"] = {"config": {"data": "/home/someone/coco/train2014", "steps": 4}}
    (root / f"{name}.json").write_text(json.dumps(manifest))
    return pkg.model_path


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None
        ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run([str(BIN / "stylekit"), *args], capture_output=True, text=True, timeout=600,
                          env=env, cwd=cwd, check=False)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# What it writes


def test_the_distribution_names_every_file_and_the_entry_point(tmp_path: Path) -> None:
    negative = trained_like(tmp_path / "pkgs" / "neg")
    mean = models.write_mean_color(tmp_path / "pkgs" / "mean").model_path
    plugin = new_plugin("Stylekit-Mine", [negative, mean], tmp_path / "out", license="CC0-1.0",
                        author="A. Painter", version="1.2.0")  # fmt: skip
    assert plugin.module == "stylekit_mine"
    project = tomllib.loads((plugin.root / "pyproject.toml").read_text())
    assert project["project"]["name"] == "Stylekit-Mine" and project["project"]["version"] == "1.2.0"
    assert project["project"]["license"] == "CC0-1.0"
    assert project["project"]["authors"] == [{"name": "A. Painter"}]
    assert project["project"]["dependencies"] == [f"stylekit>={sdk.__version__}"]
    assert project["project"]["entry-points"]["stylekit.styles"] == {"Stylekit-Mine": "stylekit_mine:styles"}
    shipped = sorted(p.name for p in (plugin.root / "stylekit_mine").iterdir() if p.name != "__init__.py")
    assert project["tool"]["setuptools"]["package-data"]["stylekit_mine"] == shipped
    assert shipped == ["mean-color.json", "mean-color.pt", "my-negative.json", "my-negative.pt"]
    # The copies verify, the license is filled in where the package had none, no host path.
    copied = read_package(plugin.root / "stylekit_mine" / "my-negative.json")
    copied.verify()
    assert copied.manifest.source["license"] == "CC0-1.0"
    assert copied.manifest.training == {"config": {"data": "train2014", "steps": 4}}
    mean_copy = read_package(plugin.root / "stylekit_mine" / "mean-color.json").manifest
    assert mean_copy.source["license"] == "CC0-1.0"
    readme = (plugin.root / "README.md").read_text()
    assert "`my-negative`" in readme and "`mean-color`" in readme and "pip install" in readme
    assert [s.name for s in plugin.styles] == ["my-negative", "mean-color"]


def test_one_package_takes_the_description_and_license_is_its_own_when_it_has_one(tmp_path: Path) -> None:
    pkg = models.write_negative(tmp_path / "neg", "solo")  # its source says CC0-1.0
    plugin = new_plugin("solo-style", [pkg.model_path], tmp_path / "out", description="Inverts every colour")
    (style,) = plugin.styles
    assert style.description == "Inverts every colour" and style.license == "CC0-1.0"
    project = tomllib.loads((plugin.root / "pyproject.toml").read_text())["project"]
    assert project["description"] == "Inverts every colour"
    assert project["license"] == "CC0-1.0"  # the style's own, an SPDX id


@pytest.mark.parametrize(
    ("name", "packages", "options", "message"),
    [
        ("bad name!", ["neg"], {}, "Invalid plugin name"),
        ("-dash", ["neg"], {}, "Invalid plugin name"),
        ("sdk", ["neg"], {}, "which stylekit itself uses"),
        ("3d-styles", ["neg"], {}, "not a Python identifier"),
        ("mine", [], {}, "at least one style package"),
        ("mine", ["neg", "neg2"], {}, "used twice"),
        ("mine", ["starry"], {}, "is a built-in style's"),
        ("mine", ["neg"], {"license": "public domain"}, "not an SPDX expression"),
        ("mine", ["neg"], {"license": "public-domain"}, "not an SPDX expression"),  # not an SPDX id
        ("mine", ["neg"], {"version": "one"}, "Invalid plugin version"),
        ("mine", ["neg"], {"description": "two\nlines"}, "one line"),
    ],
)
def test_refusals_write_nothing(
    tmp_path: Path, name: str, packages: list[str], options: dict[str, str], message: str
) -> None:
    paths = {
        "neg": models.write_negative(tmp_path / "a", "twin").model_path,
        "neg2": models.write_negative(tmp_path / "b", "twin").model_path,
        # A package whose style is named as a built-in is.
        "starry": models.write_negative(tmp_path / "c", "starry-night").model_path,
    }
    with pytest.raises(BadOptionError, match=message):
        new_plugin(name, [paths[p] for p in packages], tmp_path / "out", **options)  # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_tampered_package_or_a_full_folder_is_refused(tmp_path: Path) -> None:
    pkg = models.write_negative(tmp_path / "neg", "tampered")
    pkg.model_path.write_bytes(pkg.model_path.read_bytes() + b"x")
    with pytest.raises(StylePackageError, match="fails its checksum"):
        new_plugin("mine", [pkg.model_path], tmp_path / "out")
    assert not (tmp_path / "out").exists()
    good = models.write_negative(tmp_path / "good", "good").model_path
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(BadOptionError, match="exists and is not empty"):
        new_plugin("mine", [good], tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]


def test_the_cli_says_what_to_run_next_and_errors_are_one_line(tmp_path: Path) -> None:
    pkg = models.write_negative(tmp_path / "neg", "cli-neg").model_path
    done = cli("plugin", "new", "cli-styles", "--from", str(pkg), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pip install cli-styles" in done.stdout and (tmp_path / "cli-styles" / "pyproject.toml").is_file()
    again = cli("plugin", "new", "cli-styles", "--from", str(pkg), cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and again.stderr.startswith("stylekit: error: ")
    assert "not empty" in again.stderr


# ---------------------------------------------------------------------------------------------
# Identity when served: the archive answers to the names the registry gives


def test_a_plugin_spec_that_renames_a_package_is_archived_under_its_names(tmp_path: Path) -> None:
    wave = models.write_negative(tmp_path / "pkg", "wave")
    meta = {"source": {"title": "The Great Wave", "artist": "Hokusai"}, "license": "CC0-1.0"}
    spec = StyleSpec("ukiyo-e", "feedforward", lambda: wave, "Woodblock print look", ("hokusai",), meta)
    named = as_registered(wave, [spec]).manifest
    assert (named.name, named.description, named.aliases) == ("ukiyo-e", "Woodblock print look", ("hokusai",))
    assert named.source == {"title": "The Great Wave", "artist": "Hokusai", "license": "CC0-1.0"}
    served = StyleInfo.from_package(StylePackage(named, wave.root), origin="torchserve:ukiyo-e")[0]
    fields = ("name", "kind", "description", "aliases", "source", "license")
    assert [getattr(served, f) for f in fields] == [getattr(spec.info(), f) for f in fields]
    assert named.model_file == "wave.pt" and named.files == wave.manifest.files
    # The package on disk is untouched.
    assert read_package(wave.model_path).manifest.name == "wave"


def test_a_multistyle_network_takes_each_sub_styles_registered_name(tmp_path: Path) -> None:
    tints = models.write_tints(tmp_path / "tints")
    red = StyleSpec("vermilion", "multistyle", lambda: tints, "a warm red", ("red",), {"index": 0})
    named = as_registered(tints, [red]).manifest
    assert [s.name for s in named.styles] == ["vermilion", "tint-green", "tint-blue"]
    assert named.styles[0].aliases == ("red",) and named.name == "tints"


# ---------------------------------------------------------------------------------------------
# Installed by pip, used locally and through TorchServe


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """`stylekit plugin new` -> `pip install` (real build from the pyproject) into a target folder."""
    root = tmp_path_factory.mktemp("plugin")
    negative = trained_like(root / "pkgs", "my-negative")
    done = cli("plugin", "new", "stylekit-my-styles", "--from", str(negative), "--license", "CC0-1.0",
               "--description", "The photographic negative, as a plugin", cwd=root)  # fmt: skip
    assert done.returncode == 0, done.stderr
    site = root / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
                          str(root / "stylekit-my-styles")], capture_output=True, text=True, timeout=600,
                         check=False)  # fmt: skip
    assert pip.returncode == 0, pip.stderr
    env = {**os.environ, "STYLEKIT_HOME": str(root / "home"), "PYTHONPATH": str(site),
           "PYTHONWARNINGS": "ignore::FutureWarning"}  # fmt: skip
    yield root, env


@pytest.mark.slow
@pytest.mark.integration
def test_an_installed_plugin_lists_stylizes_and_serves_with_its_identity(
    installed_plugin: tuple[Path, dict[str, str]], content_images: list[Path], tmp_path: Path
) -> None:
    _, env = installed_plugin
    listed = cli("styles", "--json", "my-*", env=env)
    assert listed.returncode == 0, listed.stderr
    (style,) = json.loads(listed.stdout)
    assert style["origin"] == "plugin:stylekit-my-styles"
    assert style["description"] == "The photographic negative, as a plugin"
    assert style["license"] == "CC0-1.0"
    assert style["package"] == "my-negative" and len(style["revision"]) == 12

    photo = tmp_path / "photo.png"
    with Image.open(content_images[0]) as im:
        im.convert("RGB").resize((96, 64)).save(photo)
    done = cli("stylize", str(photo), "-s", "my-negative", "-o", str(tmp_path / "local.png"), env=env)
    assert done.returncode == 0, done.stderr
    source = imaging.decode(photo).rgb.astype(np.int16)
    with Image.open(tmp_path / "local.png") as result:
        assert np.abs(np.asarray(result.convert("RGB"), np.int16) - (255 - source)).max() <= 1

    # Archived from the installed plugin (by its name), with a renamed spec beside it.
    store = tmp_path / "store"
    config = model_config_dir(tmp_path)
    archived = cli("archive", "my-negative", "-o", str(store), "--config-dir", str(config), env=env)
    assert archived.returncode == 0, archived.stderr
    wave = models.write_negative(tmp_path / "wave", "wave")
    register_style(StyleSpec("ukiyo-e", "feedforward", lambda: wave, "Woodblock print look", ("hokusai",),
                             {"source": {"title": "The Great Wave"}, "license": "CC-BY-4.0"}))  # fmt: skip
    (renamed,) = packages_for(["hokusai"], False)
    build_archive(renamed, store, config_dir=config)
    # A network that lists one sub-style, as `stylekit train --extend` writes: its worker warms up.
    one = models.write_tints(tmp_path / "one", "one-tint", [("tint-red", (1.0, 0.0, 0.0))])
    assert one.resolve(None).weights == (1.0,)
    build_archive(one, store, config_dir=config)

    with running_torchserve(tmp_path / "ts", store=store) as served:
        check_served(served, photo, tmp_path, env)


def check_served(served: Served, photo: Path, tmp_path: Path, env: dict[str, str]) -> None:
    client = served.client()
    remote = {s.name: s for s in client.styles()}
    assert set(remote) == {"my-negative", "ukiyo-e", "tint-red"}
    assert remote["my-negative"].description == "The photographic negative, as a plugin"
    assert remote["my-negative"].license == "CC0-1.0"
    assert remote["ukiyo-e"].aliases == ("hokusai",) and remote["ukiyo-e"].license == "CC-BY-4.0"
    ukiyo = remote["ukiyo-e"]
    assert (ukiyo.description, ukiyo.source) == ("Woodblock print look", "The Great Wave")
    source = imaging.decode(photo).rgb.astype(np.int16)
    for style in ("my-negative", "hokusai", "UKIYO-E"):
        with client.stylize(photo, style=style) as result:
            assert np.abs(np.asarray(result.convert("RGB"), np.int16) - (255 - source)).max() <= 1, style
    with client.stylize(photo, style="tint-red") as red:
        assert np.asarray(red.convert("RGB"))[..., 1:].max() <= 1
    # And from the shell, as the plugin's README says.
    home = {**env, "STYLEKIT_HOME": str(served.home)}
    done = cli("stylize", str(photo), "-s", "hokusai", "--server", served.state.inference_url,
               "-o", str(tmp_path / "remote.png"), env=home)  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_a_single_style_manifest_carries_its_aliases_everywhere(tmp_path: Path) -> None:
    """Aliases of a feedforward package live in its manifest: the registry, a listing and a
    server of that one package (StylePackage.resolve) all answer to them."""
    from sdk.package import Manifest
    from sdk.registry import StyleRegistry

    pkg = models.write_negative(tmp_path / "pkg", "wave")
    pkg.manifest.aliases = ("great-wave",)
    (tmp_path / "pkg" / "wave.json").write_bytes(pkg.manifest.to_json())
    pkg = read_package(tmp_path / "pkg" / "wave.json")
    assert pkg.manifest.aliases == ("great-wave",)
    assert pkg.resolve("GREAT-WAVE").label == "wave"
    assert StyleInfo.from_package(pkg, origin="x")[0].aliases == ("great-wave",)
    registry = StyleRegistry(discover=True, builtin_dir=tmp_path / "pkg", user_dir=tmp_path / "none")
    assert registry.get("great-wave").name == "wave"
    with pytest.raises(StylePackageError, match="aliases of its own"):
        Manifest("net", "multistyle", "net.pt", styles=models.write_tints(tmp_path / "t").manifest.styles,
                 aliases=("x",))  # fmt: skip
