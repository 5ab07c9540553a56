"""The runner's errors a user can meet before anything runs (exit 2 in the CLI), and how a
document's errors are said: the way cwltool says them, `file:line:column: message`, one line each."""

from __future__ import annotations

import re

from schema_salad.exceptions import SchemaSaladException

from ..errors import ArchipelagoError


class RunError(ArchipelagoError):
    """Bad input: a document or job order that does not load, an input that does not fit."""

    status = 422


def describe(exc: SchemaSaladException) -> str:
    """The innermost errors of schema-salad's tree (where the document actually went wrong), each
    `file:line:column: message` on one line; the whole message if the tree says nothing more."""
    lines: list[str] = []

    def visit(node: SchemaSaladException, where: str) -> None:
        here = _where(node) or where
        children = [c for c in getattr(node, "children", []) or [] if isinstance(c, SchemaSaladException)]
        if children:
            for child in children:
                visit(child, here)
        elif (message := " ".join(str(getattr(node, "message", "") or "").split())):
            lines.append(f"{here}: {message}" if here else message)

    visit(exc, "")
    if not lines:
        lines = [re.sub(r"\s+", " ", line).strip() for line in str(exc).splitlines() if line.strip()]
    return "\n".join(dict.fromkeys(lines))


def _where(node: SchemaSaladException) -> str:
    file, start = getattr(node, "file", None), getattr(node, "start", None)
    if not file:
        return ""
    return f"{file}:{start[0]}:{start[1]}" if start else str(file)
