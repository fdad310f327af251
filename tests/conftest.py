"""Shared fixtures: where the image data lives (``../shared/data``, never copied into the repo)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from torchserve_support import Served

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("STYLEKIT_TEST_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"test data not found at {DATA} (set STYLEKIT_TEST_DATA)")
    return DATA


@pytest.fixture(scope="session")
def photos(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "photos").glob("*.jpg"))


@pytest.fixture(scope="session")
def content_images(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "content").glob("*.jpg"))


@pytest.fixture(scope="session")
def style_images(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "styles").glob("*.jpg"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own empty user style folder, so a developer's styles never leak in.

    The process-wide registry and the engines built on it remember the styles they found, so
    they start afresh too: a style one test trains must not show up in the next one's listing.
    """
    import sdk.api
    import sdk.registry

    monkeypatch.setenv("STYLEKIT_HOME", str(tmp_path_factory.mktemp("stylekit_home")))
    monkeypatch.delenv("STYLEKIT_RUNNER", raising=False)  # the runner default is the code's, not the shell's
    monkeypatch.setattr(sdk.registry, "_default", None)
    monkeypatch.setattr(sdk.api, "_engines", {})


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real TorchServe serving the built-in archives, for the tests of one module."""
    from torchserve_support import running_torchserve

    with running_torchserve(tmp_path_factory.mktemp("serving")) as state:
        yield state


def host_paths(value: object) -> list[str]:
    """Every string inside ``value`` (a manifest) that names a place on this machine."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in host_paths(v)]
    if isinstance(value, (list, tuple)):
        return [p for v in value for p in host_paths(v)]
    # An absolute path token (/a/b, ~/a, C:\a\b), alone or inside a sentence; "A / B" is not one.
    absolute = re.compile(r"(^|\s)(~|[A-Za-z]:)?[/\\][^\s/\\]+[/\\]")
    return [value] if isinstance(value, str) and absolute.search(value) else []
