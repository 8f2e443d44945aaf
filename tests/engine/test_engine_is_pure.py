"""The engine does no I/O: no engine module imports a network, clock, thread or storage module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import durablehub.engine

ENGINE_DIR = Path(durablehub.engine.__file__).parent
FORBIDDEN = {
    "azure",
    "socket",
    "threading",
    "asyncio",
    "time",
    "random",
    "durablehub.taskhub",
    "durablehub.runtime",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 0
    }
    return names


@pytest.mark.parametrize("path", sorted(ENGINE_DIR.glob("*.py")), ids=lambda p: p.name)
def test_engine_module_does_no_io(path: Path) -> None:
    names = imported_modules(path)
    prefixes = {m.split(".")[0] for m in names} | {".".join(m.split(".")[:2]) for m in names}
    assert not prefixes & FORBIDDEN, f"{path.name} imports {sorted(prefixes & FORBIDDEN)}"


def test_the_guard_sees_engine_modules() -> None:
    names = {p.name for p in ENGINE_DIR.glob("*.py")}
    assert {"replay.py", "context.py", "episode.py", "codec.py", "determinism.py", "actions.py"} <= names
