"""Commands the docs show, run as written against real servers, so a doc example cannot rot.

The HTTP API test takes its block through ``doc_commands`` (the one reader of the docs'
blocks), changes only the address (the servers here listen on free ports, not 8080) and runs it with
``bash -euo pipefail`` in a folder holding ``photo.jpg`` and ``painting.jpg``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from doc_commands import COVERAGE, PAGES, ROOT, Checkout, Elsewhere, Run, doc_blocks, page_script, pages_with
from PIL import Image
from torchserve_support import Served


def serving_api_block() -> str:
    """The HTTP API block of docs/serving.md (the one that reads the key), as a script."""
    (block,) = [b for b in doc_blocks() if b.page == "docs/serving.md" and b.commands[0].startswith("KEYS=")]
    return "\n".join(block.commands) + "\n"


@pytest.mark.integration
def test_the_http_api_examples_of_the_serving_page(
    served: Served, tmp_path: Path, content_images: list[Path], style_images: list[Path]
) -> None:
    block = serving_api_block()
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


# ---------------------------------------------------------------------------------------------
# Every command the docs show is covered (tests/doc_commands.py says how), and the checkout's own


def test_every_command_the_docs_show_is_covered_and_every_cover_is_shown() -> None:
    shown = {(block.page, command) for block in doc_blocks() for command in block.commands}
    covered = {(page, command) for page, covers in COVERAGE.items() for command in covers}
    assert set(COVERAGE) == set(PAGES), "a page was added or removed: give it an entry in COVERAGE"
    assert sorted(shown - covered) == [], "commands the docs show that no test covers (doc_commands.py)"
    assert sorted(covered - shown) == [], "COVERAGE lists commands no page shows any more"


def test_every_fenced_block_says_its_language() -> None:
    """A command block without ```bash would escape the coverage check above."""
    for page in PAGES:
        text = (ROOT / page).read_text(encoding="utf-8")
        fences = re.findall(r"^```(\w*)$", text, re.M)
        openings = fences[0::2]
        assert "" not in openings, f"{page}: a fenced block without a language (bash, python, text, ...)"


def test_the_runnable_commands_change_only_what_the_machine_lacks() -> None:
    for page in [*pages_with(Run), *pages_with(Checkout)]:
        page_script(page, Run)  # raises when a substitution no longer occurs in its command
        page_script(page, Checkout)


@pytest.mark.parametrize(
    ("page", "command"),
    [(p, c) for p, covers in COVERAGE.items() for c, cover in covers.items() if isinstance(cover, Elsewhere)],
)
def test_a_command_run_elsewhere_is_run_there(page: str, command: str) -> None:
    cover = COVERAGE[page][command]
    assert isinstance(cover, Elsewhere)
    assert cover.evidence in (ROOT / cover.where).read_text(encoding="utf-8"), (page, command, cover)


@pytest.mark.slow
def test_the_checkout_commands_of_the_docs_run(tmp_path: Path, data_dir: Path) -> None:
    """The scripts a developer runs in the checkout: the README's demo, and how the contact
    sheet was made (2 steps instead of 2000, into a temp folder instead of docs/)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "DATA": str(data_dir),
           "RUNS": str(tmp_path / "runs"), "PYTHONWARNINGS": "ignore::FutureWarning"}  # fmt: skip
    for page in pages_with(Checkout):
        script = "set -euo pipefail\n" + page_script(page, Checkout)
        done = subprocess.run(["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=900, check=False)  # fmt: skip
        assert done.returncode == 0, f"{page}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    demo = subprocess.run(["scripts/demo.sh"], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert "stylekit: wrote" in demo.stdout
    with Image.open(tmp_path / "runs" / "contact_sheet.jpg") as sheet:
        assert sheet.width >= 3 * 320
