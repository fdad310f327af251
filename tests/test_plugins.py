"""Plugins: a real plugin distribution (``tests/plugin_fixture``) found through its entry point.

The fixture folder holds two installed-looking distributions (``*.dist-info`` with
``entry_points.txt``): ``stylekit-fixture-plugin``, whose entry point returns a spec that builds
a real TorchScript package (a photographic negative) on first use, and
``stylekit-fixture-broken``, whose module fails to import. Putting the folder on ``sys.path``
(or ``PYTHONPATH`` for a fresh process) installs both, as pip would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from plugin_fixture.stylekit_fixture_plugin import models

from sdk import imaging
from sdk.engine import Engine
from sdk.errors import PluginError
from sdk.registry import StyleRegistry

FIXTURE = Path(__file__).resolve().parent / "plugin_fixture"
BIN = Path(sys.executable).parent


@pytest.fixture()
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURE))


def plugin_registry(tmp_path: Path, builtin_dir: Path | None = None) -> StyleRegistry:
    return StyleRegistry(
        discover=True,
        builtin_dir=builtin_dir or tmp_path / "no-builtins",
        user_dir=tmp_path / "no-user-styles",
    )


def fresh_process_env() -> dict[str, str]:
    env = dict(os.environ)  # STYLEKIT_HOME is this test's own (conftest)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(FIXTURE), env.get("PYTHONPATH", "")) if p)
    env["PYTHONWARNINGS"] = "ignore::FutureWarning"
    return env


def assert_negative(result_rgb: np.ndarray, photo: Path) -> None:
    source = imaging.decode(photo).rgb.astype(np.int16)
    assert result_rgb.shape == source.shape
    assert np.abs(result_rgb.astype(np.int16) - (255 - source)).max() <= 1


def test_good_plugin_loads_and_broken_plugin_is_reported_by_name(installed: None, tmp_path: Path) -> None:
    reg = plugin_registry(tmp_path)
    spec = reg.get("fixture-negative")
    assert spec.origin == "plugin:negative"
    assert reg.get("FIXTURE-INVERT") is spec
    assert spec.metadata["license"] == "CC0-1.0"
    assert [s.name for s in reg.list()] == ["fixture-negative"]
    (error,) = reg.errors
    assert isinstance(error, PluginError)
    assert "plugin 'broken'" in error.message
    assert "stylekit-fixture-broken 0.1.0" in error.message
    assert "ModuleNotFoundError" in error.message and "stylekit_fixture_missing_dependency" in error.message


def test_builtin_names_resolve_without_loading_plugins(installed: None, tmp_path: Path) -> None:
    builtin = tmp_path / "builtin"
    models.write_negative(builtin)
    reg = plugin_registry(tmp_path, builtin)
    assert reg.get("negative").origin == "builtin"
    assert reg.errors == ()  # the broken plugin has not been touched yet
    assert {s.name for s in reg.list()} == {"negative", "fixture-negative"}
    assert len(reg.errors) == 1


def test_plugin_style_stylizes(installed: None, tmp_path: Path, photos: list[Path]) -> None:
    registry = plugin_registry(tmp_path)
    result = Engine(device="cpu").stylize(photos[0], registry.resolve("fixture-negative"))
    assert_negative(np.asarray(result), photos[0])
    pkg = registry.get("fixture-negative").package()
    assert pkg.model_path.is_file() and pkg.manifest.kind == "feedforward"


def test_sdk_stylize_uses_an_installed_plugin(tmp_path: Path, photos: list[Path]) -> None:
    """A fresh interpreter with the distributions on its path, as after ``pip install``."""
    out = tmp_path / "negative.png"
    code = (
        "import sys, sdk\n"
        "sdk.stylize(sys.argv[1], style='fixture-invert').save(sys.argv[2])\n"
        "print(sorted(s.name for s in sdk.list_styles('fixture-*')))\n"
    )
    done = subprocess.run(
        [str(BIN / "python"), "-c", code, str(photos[1]), str(out)],
        env=fresh_process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['fixture-negative']"
    assert_negative(imaging.decode(out).rgb, photos[1])


def test_cli_lists_plugin_styles_and_names_the_broken_plugin(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(BIN / "stylekit"), "styles", "--json"],
        env=fresh_process_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    styles = {s["name"]: s for s in json.loads(done.stdout)}
    assert styles["fixture-negative"]["origin"] == "plugin:negative"
    assert styles["fixture-negative"]["aliases"] == ["fixture-invert"]
    warnings = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1
    assert warnings[0].startswith("stylekit: warning: Style plugin 'broken'")
    assert "Traceback" not in done.stderr
