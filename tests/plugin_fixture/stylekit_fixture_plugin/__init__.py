"""A tiny stylekit style plugin, installed by the tests through its ``.dist-info``.

Its entry point (group ``stylekit.styles``) returns a spec whose loader builds a real small
TorchScript package the first time the style is used, as a plugin that downloads or unpacks
its weights lazily would.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sdk.package import StylePackage, read_package
from sdk.registry import StyleSpec


def _build() -> StylePackage:
    # Under STYLEKIT_HOME, which every test gets fresh, so nothing outlives the test's temp dir.
    root = Path(os.environ.get("STYLEKIT_HOME") or tempfile.gettempdir()) / "fixture-plugin"
    if (root / "fixture-negative.json").is_file():
        return read_package(root / "fixture-negative.json")
    from stylekit_fixture_plugin.models import write_negative

    return write_negative(root, "fixture-negative")


def styles() -> list[StyleSpec]:
    return [
        StyleSpec(
            name="fixture-negative",
            kind="feedforward",
            loader=_build,
            description="Photographic negative, from a plugin",
            aliases=("fixture-invert",),
            metadata={"source": {"title": "Test pattern", "license": "CC0-1.0"}, "license": "CC0-1.0"},
        )
    ]
