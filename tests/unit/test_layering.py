"""The shape of the code, checked: no import cycles, small modules, the HTTP layer and the router
free of database models, and no per-resource branches in the generic engine (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "src" / "archipelago"
MAX_LINES = 450


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(("archipelago", *parts))
        found[name.removesuffix(".__init__")] = path
    return found


def module_imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules imported at module level (imports inside functions are deliberate, lazy ones)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    imported = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                imported.add(candidate if candidate in known else target)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {m for m in imported if m in known and m != name}


def test_no_import_cycles():
    known = modules()
    graph = {name: module_imports(name, path, known) for name, path in known.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    assert cycles == []


def test_no_module_is_a_room_of_its_own():
    too_long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
                if "migrations" not in p.parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert too_long == {}


def test_the_http_layer_and_the_router_do_not_touch_database_models():
    known = modules()
    for name in [n for n in known if n.startswith(("archipelago.api", "archipelago.federation"))]:
        assert "archipelago.db.models" not in module_imports(name, known[name], known), name


def test_the_generic_engine_has_no_per_resource_branches():
    engine = (ROOT / "backend" / "local.py").read_text()
    assert not re.search(r"resource(_name)?\s*(==|in)\s*[(\"']", engine)


def test_formats_are_pure():
    """Wire formats import nothing of ours but errors and ids, and do no I/O."""
    known = modules()
    for name in [n for n in known if n.startswith("archipelago.formats.")]:
        assert module_imports(name, known[name], known) <= {"archipelago.errors", "archipelago.ids",
                                                            "archipelago.formats.locator"}, name
