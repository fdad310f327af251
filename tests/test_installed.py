"""The product as a user installs it: every documented journey, from the built wheel.

The module builds the sdist and, from it, the wheel (``python -m build``: a file the sdist
leaves out breaks the wheel), installs the wheel with ``[all]`` and torch into a fresh venv,
and runs each page of README.md and docs/ (``doc_commands.COVERAGE``) as one bash script in an
empty folder outside the checkout: stylize (built-in, blend, arbitrary), styles, train -> stylize,
``--extend``, torchrun, plugin new -> pip install -> stylize, archive -> serve start (the shipped
config) -> remote stylize -> StyleClient -> stop, the HTTP API with curl, web -> one request.

A ``.pth`` hook in that venv records every file any of its Python processes (TorchServe's
workers included) opens or imports from the checkout; a page fails if there is one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from doc_commands import ROOT, Run, page_script, pages_with
from torchserve_support import free_port_block

pytestmark = [pytest.mark.slow, pytest.mark.integration]

# Servers a page starts run in the background; when the page ends (or fails) they are stopped.
PRELUDE = r"""
set -euxo pipefail
BG_PIDS=()
background() {  # background URL COMMAND...: start a server, wait until URL answers
  local url=$1; shift
  "$@" >>background.log 2>&1 &
  local pid=$!
  BG_PIDS+=("$pid")
  for _ in $(seq 600); do
    curl -fsL -o /dev/null "$url" && return 0
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "background: '$*' exited" >&2; tail -n 30 background.log >&2; return 1
    fi
    sleep 0.2
  done
  echo "background: $url did not answer" >&2
  return 1
}
finish() {
  local rc=$?
  set +x
  for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stylekit serve stop >/dev/null 2>&1 || true
  exit "$rc"
}
trap finish EXIT
"""

GUARD = '''"""Test only (tests/test_installed.py): record what is read from the stylekit checkout."""
import os
import sys

_ROOTS = {roots!r}
_LOG = {log!r}


def _under(path):
    try:
        full = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return any(full == root or full.startswith(root + os.sep) for root in _ROOTS)


def _record(what):
    with open(_LOG, "a", encoding="utf-8") as fh:  # an "open" event too: outside the checkout
        fh.write(f"{{os.getpid()}} {{sys.argv[:2]}} {{what}}\\n")


def _hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)) and _under(args[0]):
        _record(f"open {{args[0]}}")
    elif event == "import" and len(args) > 1 and args[1] and _under(args[1]):
        _record(f"import {{args[0]}} from {{args[1]}}")


for _entry in sys.path:
    if _entry and _under(_entry):
        _record(f"sys.path holds {{_entry}}")
sys.addaudithook(_hook)
'''

# What each page leaves behind in its folder, besides a zero exit status.
EXPECT = {
    "README.md": ["out.png", "out/coco_test2014_000000000001-starry-night+navy-dots.png",
                  "big-strokes.png", "regions.png",
                  "runs/starry/starry.pt", "runs/starry-ddp/starry.pt", "stylekit-starry/pyproject.toml",
                  "model_archives/multistyle26.mar", "model_archives/starry.mar",
                  "model_archives/wave-cin.mar"],
    "docs/offline_training.md": ["photo-wave.png", "wave-eval.jpg",
                                 "runs/wave-distilled/checkpoints/best.pt"],
    "docs/sdk.md": ["out.png", "stylekit-my-styles/stylekit_my_styles/wave.pt"],
    "docs/serving.md": ["out.png", "out.jpg", "blend.png", "request.json", "regions.png"],
    "docs/speed.md": ["exported/multistyle26.pt2", "exported/multistyle26.onnx", "out.png", "out-ts.png"],
    "docs/training.md": ["photo-starry.png", "runs/starry/tensorboard", "runs/starry-ddp/starry.pt"],
    "docs/video.md": ["clip.mp4", "clip-styled.mp4", "big-strokes.mp4", "masked.mp4"],
    "docs/web.md": ["photo-pastel-sunset.png", "regions.png"],
}


@dataclass(frozen=True)
class Installed:
    venv: Path
    wheel: Path
    guard_log: Path
    vgg: Path

    def env(self, home: Path) -> dict[str, str]:
        """A user's shell with the venv active: nothing of the test environment, no PYTHONPATH."""
        keep = {k: v for k, v in os.environ.items()
                if not k.startswith(("STYLEKIT_", "PYTHON", "VIRTUAL_ENV", "CONDA"))}  # fmt: skip
        ts, worker = free_port_block(5), free_port_block(4)
        web, web2, tb = (free_port_block(1) for _ in range(3))
        return {
            **keep,
            "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            "VIRTUAL_ENV": str(self.venv),
            "STYLEKIT_HOME": str(home),
            # VGG weights cannot be downloaded here: a random-init file of the right shape.
            "STYLEKIT_VGG_WEIGHTS": str(self.vgg),
            "VGG": str(self.vgg),
            "TS_PORT": str(ts), "TS_WORKER_PORT": str(worker),
            "WEB_PORT": str(web), "WEB2_PORT": str(web2), "TB_PORT": str(tb),
        }  # fmt: skip


def _run(cmd: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("installed")
    dist = root / "dist"
    # The sdist, then the wheel built from the unpacked sdist (as PyPI users' pip would).
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)], timeout=600)
    (wheel,) = dist.glob("stylekit-*.whl")
    (sdist,) = dist.glob("stylekit-*.tar.gz")
    assert sdist.stat().st_size > 0
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # torch from the same local wheels as the checkout's .venv (scripts/bootstrap.sh pins them).
    _run([*pip, f"{wheel}[all]", "torch==2.14.1", "torchvision==0.29.1"], timeout=1500, cwd=root)
    (site,) = (venv / "lib").glob("python3*/site-packages")
    log = root / "checkout-reads.log"
    roots = sorted({str(ROOT), os.path.realpath(ROOT)})
    (site / "_stylekit_checkout_guard.py").write_text(GUARD.format(roots=roots, log=str(log)))
    (site / "_stylekit_checkout_guard.pth").write_text("import _stylekit_checkout_guard\n")
    vgg = root / "vgg19-features-RANDOM-INIT-for-tests.pth"
    _run([sys.executable, "-c", "import sys, torch, torchvision; torch.manual_seed(0); "
          "torch.save(torchvision.models.vgg19().features.state_dict(), sys.argv[1])", str(vgg)],
         timeout=300)  # fmt: skip
    yield Installed(venv, wheel, log, vgg)


def test_the_installed_code_is_the_wheels_and_reads_nothing_from_the_checkout(
    installed: Installed, tmp_path: Path
) -> None:
    script = (
        "import sdk, training, handlers, sdk.cli, sdk.serving.server, sdk.web.app; "
        "print('\\n'.join(m.__file__ for m in (sdk, training, handlers)))"
    )
    env = installed.env(tmp_path)
    done = _run([str(installed.venv / "bin" / "python"), "-c", script], cwd=tmp_path, env=env)
    site = next((installed.venv / "lib").glob("python3*/site-packages"))
    assert all(Path(line).is_relative_to(site) for line in done.stdout.split()), done.stdout
    version = _run([str(installed.venv / "bin" / "stylekit"), "--version"], cwd=tmp_path, env=env)
    assert installed.wheel.name.split("-")[1] in version.stdout
    assert not installed.guard_log.exists(), installed.guard_log.read_text()
    # The guard sees a read from the checkout when there is one (PYTHONPATH pointing into it).
    leak = _run([str(installed.venv / "bin" / "python"), "-c", "import sdk"], cwd=tmp_path,
                env={**env, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert leak.returncode == 0
    seen = installed.guard_log.read_text()
    installed.guard_log.unlink()
    assert f"sys.path holds {ROOT}" in seen and f"open {ROOT / 'sdk'}{os.sep}" in seen, seen


def link_data(work: Path, data_dir: Path) -> None:
    """The files the docs name, as links to the shared data (never copied)."""
    content, styles = data_dir / "content", data_dir / "styles"
    for name, target in {
        "photo.jpg": content / "chicago.jpg",
        "painting.jpg": styles / "composition_vii.jpg",
        "starry.jpg": styles / "starry_night.jpg",
        "starry_night.jpg": styles / "starry_night.jpg",
        "wave.jpg": styles / "wave.jpg",
    }.items():
        (work / name).symlink_to(target)
    (work / "photos").mkdir()
    for photo in sorted((data_dir / "photos").glob("*.jpg"))[:4]:
        (work / "photos" / photo.name).symlink_to(photo)


@pytest.mark.parametrize("page", pages_with(Run))
def test_every_documented_command_of_the_page_runs_as_installed(
    installed: Installed, page: str, tmp_path: Path, data_dir: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    link_data(work, data_dir)
    script = PRELUDE + page_script(page, Run)
    done = subprocess.run(["bash", "-c", script], cwd=work, env=installed.env(tmp_path / "home"),
                          capture_output=True, text=True, timeout=1200, check=False)  # fmt: skip
    assert done.returncode == 0, f"{page}:\n{done.stdout[-3000:]}\n{done.stderr[-8000:]}"
    missing = [name for name in EXPECT[page] if not (work / name).exists()]
    assert not missing, f"{page} left no {missing}: {sorted(p.name for p in work.iterdir())}"
    assert not installed.guard_log.exists(), installed.guard_log.read_text()
