"""Commands the docs show, run as written against real servers, so a doc example cannot rot.

Each test takes a fenced ``bash`` block from a doc page by the sentence it follows, changes only
the address (the servers here listen on free ports, not 8080) and runs it with
``bash -euo pipefail`` in a folder holding ``photo.jpg`` and ``painting.jpg``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from PIL import Image
from torchserve_support import Served

pytestmark = pytest.mark.integration

DOCS = Path(__file__).resolve().parents[1] / "docs"


def bash_block(page: str, after: str) -> str:
    """The first ```bash block that follows the text ``after`` on ``docs/<page>``."""
    text = (DOCS / page).read_text(encoding="utf-8")
    start = text.index(after)
    match = re.compile(r"```bash\n(.*?)```", re.S).search(text, start)
    assert match is not None, f"no bash block after {after!r} in {page}"
    return match.group(1)


def test_the_http_api_examples_of_the_serving_page(
    served: Served, tmp_path: Path, content_images: list[Path], style_images: list[Path]
) -> None:
    block = bash_block("serving.md", "A stylize request is `POST /predictions/<model>`")
    host = served.state.inference_url.removeprefix("http://")
    script = block.replace("127.0.0.1:8080", host)
    # A photo whose base64 (about 400 KB) is far over the 128 KiB a single exec argument may be.
    with Image.open(content_images[0]) as im:
        im.convert("RGB").resize((1200, 900)).save(tmp_path / "photo.jpg", quality=97)
    assert (tmp_path / "photo.jpg").stat().st_size * 4 / 3 > 128 * 1024
    with Image.open(style_images[0]) as im:
        im.convert("RGB").save(tmp_path / "painting.jpg")
    env = {**os.environ, "STYLEKIT_HOME": str(served.home)}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    for name in ("out.png", "out.jpg", "blend.png"):
        with Image.open(tmp_path / name) as result:
            assert result.size == (1200, 900), name
