"""The shape of the code, checked: each package imports only the layers its row below names (and
ARCHITECTURE.md lists the layers in this order), no import cycles, small modules, names imported
from where they are defined, the HTTP layer and the router free of database models, and no
per-resource branches in the generic engine, the router or the listings (ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOT = REPO / "src" / "archipelago"
MAX_LINES = 450

# Every layer (a package, or a module that stands as a layer of its own), top to bottom as
# ARCHITECTURE.md lists them, with the layers it may import. A layer names only layers above it.
# Imports inside functions count: a lazy import is still a dependency.
LAYERS: dict[str, set[str]] = {
    "__init__": set(),  # the version
    "errors": set(),
    "ids": {"errors"},
    "times": {"errors"},
    "files": {"errors"},
    "refusals": set(),
    "lifetime": set(),
    "formats": {"errors", "ids"},
    "resolver.identifiers": {"errors", "ids"},
    "config": {"ids"},
    "rpc": {"errors"},
    "db": {"errors", "files", "ids"},
    "auth": {"config", "db", "errors", "formats", "ids", "refusals", "rpc", "times"},
    "compute": {"auth", "config", "db", "errors", "formats", "ids", "times"},
    "resources": {"auth", "compute", "config", "db", "errors", "formats", "ids", "resolver.identifiers", "times"},
    "backend": {"auth", "config", "db", "errors", "ids", "resources", "times"},
    "federation": {"backend", "errors", "formats", "ids", "resources", "rpc"},
    "keep": {"errors", "files", "formats", "rpc"},
    "keepstore": {"config", "errors", "files", "formats", "keep", "refusals", "rpc"},
    "gateway": {"backend", "config", "db", "errors", "formats", "keep", "keepstore"},
    "sdk": {"errors", "files", "formats", "ids", "keep", "rpc"},
    "compute.dispatch": {"compute", "config", "errors", "files", "sdk"},
    "executor": {"errors", "files", "formats", "ids", "lifetime", "sdk"},
    "cwl": {"errors", "executor", "formats", "keep", "keepstore", "rpc", "sdk"},
    "ga4gh": {"__init__", "backend", "cwl", "db", "errors", "formats", "ids", "keep"},
    "notebook": {"errors", "executor", "ids", "rpc", "sdk"},
    "resolver": {"auth", "config", "cwl", "db", "errors", "ids", "resolver.identifiers", "rpc", "sdk"},
    "web": {"backend", "config", "cwl", "db", "errors", "executor", "formats", "ga4gh", "ids", "keep", "keepstore",
            "notebook", "refusals", "resolver", "resolver.identifiers", "rpc", "sdk", "times"},
    "api": {"backend", "config", "db", "errors", "federation", "formats", "ga4gh", "ids", "keep", "notebook",
            "resolver", "resources", "web"},
    "run": {"api", "backend", "compute.dispatch", "config", "cwl", "db", "errors", "federation", "files", "formats",
            "gateway", "keep", "keepstore", "lifetime", "resolver", "rpc", "sdk"},
    "cli": {"__init__", "compute.dispatch", "config", "cwl", "errors", "executor", "files", "formats", "keep",
            "keepstore", "notebook", "resolver", "resolver.identifiers", "rpc", "run", "sdk"},
    "__main__": {"cli"},
}
# names a module may hand on from another of ours (else a name is imported from where it is defined)
REEXPORTS: dict[str, set[str]] = {
    "archipelago.backend.interface": {"Caller", "Record"},  # the Backend's own vocabulary
}


def modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(("archipelago", *parts))
        found[name.removesuffix(".__init__")] = path
    return found


def imported_targets(name: str, path: Path, everywhere: bool = False) -> list[tuple[str, list[str]]]:
    """(module, names) of each `from ... import` / `import ...`; module level only, or everywhere."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree) if everywhere else tree.body:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
    return found


def module_imports(name: str, path: Path, known: dict[str, Path], everywhere: bool = False) -> set[str]:
    """Our modules `name` imports (at module level unless `everywhere`: imports inside functions
    are deliberate, lazy ones, which break no cycle at import time)."""
    imported = set()
    for target, names in imported_targets(name, path, everywhere):
        imported.update(f"{target}.{n}" if f"{target}.{n}" in known else target for n in names or [""])
    return {m for m in imported if m in known and m != name}


def layer_of(module: str) -> str:
    """The layer a module belongs to: the longest row of LAYERS naming it or a package above it."""
    relative = module.removeprefix("archipelago").removeprefix(".") or "__init__"
    parts = relative.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYERS:
            return ".".join(parts[:n])
    raise AssertionError(f"{module} belongs to no layer of LAYERS")


def test_every_module_has_a_layer():
    for name in modules():
        layer_of(name)


def test_each_layer_names_only_layers_above_it():
    rows = list(LAYERS)
    above = {(layer, allowed) for n, layer in enumerate(rows) for allowed in LAYERS[layer]
             if allowed not in rows[:n]}
    assert above == set()


def test_each_package_imports_only_the_layers_it_names():
    known = modules()
    wrong = sorted(f"{name} imports {target}" for name, path in known.items()
                   for target in module_imports(name, path, known, everywhere=True)
                   if layer_of(target) != layer_of(name) and layer_of(target) not in LAYERS[layer_of(name)])
    assert wrong == []


def architecture_layers() -> list[str]:
    """The layers in the order ARCHITECTURE.md's layer list introduces them: each line starting at
    its first column names one or more (`errors.py  ids.py`, `formats/`, `compute/dispatch/`)."""
    text = (REPO / "ARCHITECTURE.md").read_text()
    block = text.split("## The layers", 1)[1].split("```", 2)[1]
    found = []
    for line in block.splitlines():
        if not line or line.startswith(" "):
            continue
        for token in line.split():
            if not token.endswith(("/", ".py")):
                break
            found.append(token.removesuffix("/").removesuffix(".py").replace("/", "."))
    return found


def test_architecture_md_lists_the_layers_in_this_order():
    assert architecture_layers() == list(LAYERS)


def defined_names(path: Path) -> set[str]:
    """Names a module binds itself at its top level (not those it imports)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def test_names_are_imported_from_where_they_are_defined():
    known = modules()
    defined = {name: defined_names(path) for name, path in known.items()}
    handed_on = sorted(
        f"{name}: {target}.{n}" for name, path in known.items()
        for target, names in imported_targets(name, path, everywhere=True)
        if target in known and known[target].name != "__init__.py"
        for n in names
        if n not in defined[target] and f"{target}.{n}" not in known and n not in REEXPORTS.get(target, set()))
    assert handed_on == []


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
        assert "archipelago.db.models" not in module_imports(name, known[name], known, everywhere=True), name


# a resource's name compared with a literal, or looked up in a set of names standing in for a property
PER_RESOURCE_BRANCH = re.compile(r"(?<!for )\b(resource|kind)(_name|\.name)?\s*(==|!=|in|not in)\s*"
                                 r"([(\"'\[{]|[A-Z][A-Z_]{2,}\b)")


def test_the_engine_router_and_listings_have_no_per_resource_branches():
    """What differs between resources is a property of the resource (resources/<name>.py)."""
    for module in ("backend/local.py", "backend/contents.py", "federation/router.py", "federation/remote.py"):
        assert PER_RESOURCE_BRANCH.findall((ROOT / module).read_text()) == [], module


def test_formats_are_pure():
    """Wire formats import nothing of ours but errors and ids, and do no I/O."""
    known = modules()
    for name in [n for n in known if n.startswith("archipelago.formats.")]:
        assert module_imports(name, known[name], known) <= {"archipelago.errors", "archipelago.ids",
                                                            "archipelago.formats.locator"}, name
