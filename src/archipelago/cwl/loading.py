"""Loading a workflow document with cwltool, and saying what is wrong with one that does not load
or validate the way cwltool says it: `file:line:column: message`, one line per error, no
traceback (the CLI makes it exit 2, as for any bad input)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cwltool.context import LoadingContext
from cwltool.errors import WorkflowException
from cwltool.load_tool import load_tool
from cwltool.process import Process
from schema_salad.exceptions import SchemaSaladException

from .errors import RunError, describe


class DocumentError(RunError):
    """The workflow document does not load or validate."""


def document_uri(workflow: Path) -> str:
    """The URI cwltool loads `workflow` from: the file, and the `#fragment` naming one process of a
    packed document, if any."""
    path, hash_sign, fragment = str(workflow).partition("#")
    return Path(path).resolve().as_uri() + hash_sign + fragment


def load(workflow: Path, make_tool: Callable[[Any, LoadingContext], Process]) -> Process:
    path = Path(str(workflow).partition("#")[0])
    if not path.is_file():
        raise DocumentError(f"{path}: no such file")
    loading = LoadingContext({"construct_tool_object": make_tool, "relax_path_checks": True})
    try:
        return load_tool(document_uri(workflow), loading)
    except SchemaSaladException as exc:
        raise DocumentError(describe(exc)) from None
    except WorkflowException as exc:
        raise DocumentError(" ".join(str(exc).split()) or f"{path} does not load") from None

