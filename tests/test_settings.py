"""``sdk.settings``: every ``STYLEKIT_*`` variable is read by one rule, so no two readers disagree."""

from __future__ import annotations

from pathlib import Path

import pytest

from sdk import settings
from sdk.imaging import ImageLimits
from sdk.serving.state import ServerState


def test_home_expands_the_tilde_for_every_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", "~/sk-home")
    home = Path.home() / "sk-home"
    assert settings.home() == home
    assert settings.user_styles_dir() == home / "styles"  # the registry's folder
    assert settings.serve_dir() == home / "serve"  # stylekit serve's and the client's
    assert ServerState.load() is None  # looked for under the expanded path, not in "./~"


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_variable_is_unset(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STYLEKIT_HOME", value)
    monkeypatch.setenv("STYLEKIT_MAX_SIDE", value)
    assert settings.get(settings.HOME) is None
    assert settings.home() == Path.home() / ".stylekit"
    assert ImageLimits.from_env().max_side == ImageLimits().max_side


def test_values_are_stripped() -> None:
    assert settings.get(settings.TOKEN, {"STYLEKIT_TOKEN": "  key \n"}) == "key"
