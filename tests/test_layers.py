"""The layers' rules, read from the source's own import statements (lazy imports inside functions
included; ``if TYPE_CHECKING:`` blocks, which never run, left out): no import cycles, and
dependencies that point one way (docs/DEVELOPING.md, "Layers").
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("sdk", "handlers", "training")


def _files() -> dict[str, Path]:
    found = {}
    for top in ROOTS:
        for path in (REPO / top).rglob("*.py"):
            found[".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


FILES = _files()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                names.add(full if full in FILES else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


GRAPH = {name: {d for d in _imports(path) if d in FILES and d != name} for name, path in FILES.items()}


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for dep in GRAPH[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_there_are_no_import_cycles() -> None:
    cycles = sorted({tuple(sorted((a, d))) for a, deps in GRAPH.items() for d in deps if a in _reachable(d)})
    assert cycles == []


@pytest.mark.parametrize("module", sorted(m for m in FILES if m.split(".")[0] == "sdk"))
def test_sdk_never_imports_handlers_or_training(module: str) -> None:
    wrong = sorted(d for d in GRAPH[module] if d.split(".")[0] in ("handlers", "training"))
    assert wrong == []


def test_the_client_never_imports_the_server_side() -> None:
    server_side = ("sdk.serving.server", "sdk.serving.archive", "sdk.engine")
    assert not {m for m in _reachable("sdk.client") if m.startswith(server_side)}


def test_the_engine_does_not_import_the_registry() -> None:
    # The engine runs a resolved style; names are resolved above it.
    assert "sdk.registry" not in _reachable("sdk.engine")


def test_the_handler_serves_its_package_without_a_registry() -> None:
    assert "sdk.registry" not in _reachable("handlers.stylize_handler")


def test_sdk_does_not_even_name_training_modules() -> None:
    # Module names in strings (importlib) count too: sdk.cli finds training's commands through an
    # entry point instead.
    named = re.compile(r"[\"'](training|handlers)\.[a-z_]")
    for name, path in FILES.items():
        if name.split(".")[0] == "sdk":
            assert not named.search(path.read_text(encoding="utf-8")), name


def test_every_command_follows_the_one_convention() -> None:
    import importlib

    from sdk.cli import commands
    from sdk.extras import EXTRAS

    table = commands()
    expected = {
        "stylize",
        "styles",
        "archive",
        "serve",
        "web",
        "compile",
        "train",
        "export",
        "import-pretrained",
    }
    assert expected <= set(table)
    for name, (module, help_text, extra) in table.items():
        assert module.split(".")[1] == "commands" and help_text and extra in (None, *EXTRAS), name
        mod = importlib.import_module(module)
        assert callable(mod.configure) and callable(mod.run), name
