"""The runner's modules depend one way, in the order ARCHITECTURE.md lists them under cwl/: the
plan knows nothing of submission, a job knows the StepService and not the runner, and so on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CWL = ROOT / "src" / "archipelago" / "cwl"


def listed_order() -> list[list[str]]:
    """The rows of module names under `cwl/` in ARCHITECTURE.md, top to bottom."""
    lines = (ROOT / "ARCHITECTURE.md").read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("cwl/ "))
    rows = []
    for line in lines[start + 1:]:
        if not line.startswith("  "):
            break
        if names := re.findall(r"\b([a-z_]+)\.py\b", line.split("  ", 2)[1] if line.startswith("  ") else ""):
            rows.append(names)
    return rows


def imports(path: Path) -> set[str]:
    """The sibling modules a module imports, at its top or inside its functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_module_is_listed_and_imports_only_those_above_it() -> None:
    rows = listed_order()
    rank = {name: n for n, row in enumerate(rows) for name in row}
    modules = {p.stem for p in CWL.glob("*.py") if p.stem != "__init__"}
    assert set(rank) == modules
    upward = {(m, i) for m in modules for i in imports(CWL / f"{m}.py") if rank[i] >= rank[m]}
    assert upward == set()
