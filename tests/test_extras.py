"""A command whose extra is not installed says so in one line, naming the extra, and leaves
nothing behind. An environment without the extra is made by a meta-path finder that refuses its
modules in a fresh interpreter (everything else is this venv, as installed)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sdk import extras

REPO = Path(__file__).resolve().parents[1]

_WITHOUT = """
import sys
blocked = set(sys.argv[1].split(","))

class Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Missing())
from sdk.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_without(modules: tuple[str, ...], args: list[str], home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STYLEKIT_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", _WITHOUT, ",".join(modules), *args], env=env, cwd=home,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "args"),
    [
        ("serve", ["serve", "start"]),
        ("serve", ["serve", "status"]),
        ("serve", ["archive", "--all"]),
        ("web", ["web", "--port", "1"]),
        ("train", ["train", "--style-image", "s.jpg", "--data", ".", "--name", "x"]),
        ("video", ["video", "in.mp4", "-s", "starry-night", "-o", "out.mp4"]),
    ],
)
def test_a_missing_extra_is_one_line_that_names_it(extra: str, args: list[str], tmp_path: Path) -> None:
    done = _run_without(extras.EXTRAS[extra][1][:1], args, tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        f"stylekit: error: '{args[0]}' needs {extras.EXTRAS[extra][0]}: pip install 'stylekit[{extra}]'"
    ]
    # Nothing started, nothing written: no server state, no archives, no run folder.
    assert not (tmp_path / "serve").exists() and not (tmp_path / "model_archives").exists()
    assert not (tmp_path / "runs").exists()


def test_the_commands_that_need_no_extra_run_without_any(tmp_path: Path) -> None:
    every = tuple(m for _, modules in extras.EXTRAS.values() for m in modules)
    done = _run_without(every, ["styles", "--json"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "starry-night" in done.stdout


def test_the_extras_named_here_are_the_ones_setup_py_declares() -> None:
    tree = ast.parse((REPO / "setup.py").read_text())
    assigns = [n for n in ast.walk(tree) if isinstance(n, ast.Assign)]
    assign = next(n for n in assigns if ast.unparse(n.targets[0]) == "EXTRAS")
    declared = {k.value for k in assign.value.keys if isinstance(k, ast.Constant)}  # type: ignore[attr-defined]
    assert set(extras.EXTRAS) <= declared
    for extra in extras.EXTRAS:
        assert extras.missing_modules(extra) == [], extra  # this venv has every extra (.[all,dev])
