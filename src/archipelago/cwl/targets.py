"""`arv:ClusterTarget`, read as arvados-cwl-runner reads it, in one place: where a step's
container request goes (`cluster_id`) and which project owns it (`project_uuid`), each a literal
or an expression evaluated with the step's inputs.

A target may sit on a workflow step (evaluated with that step's inputs, before its tool keeps
only its own), on a tool (with the tool's inputs), or on a workflow (with the workflow's). Each
field comes from the nearest target that sets it: the steps around the tool, innermost first, then
the tool's own hints and requirements, then the workflows around it, innermost first; a cluster
nobody names is home. cwltool also copies a step's and a workflow's hints into the tools below
them; those copies are not the tool's own and are not read again. The plan (cwl/plan.py) and the
run (cwl/tool.py) both call `place`, so a step runs where its plan said.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from cwl_utils.expression import do_eval

CLUSTER_TARGET = "http://arvados.org/cwl#ClusterTarget"
_quiet = threading.local()


class _Quiet(logging.Filter):
    """cwl_utils logs a traceback with every expression error; ours are reported, once, as problems."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


logging.getLogger("cwl_utils").addFilter(_Quiet())


class Unknown:
    """A value that exists only once earlier steps have run (their outputs)."""

    def __repr__(self) -> str:
        return "<decided at run time>"


UNKNOWN = Unknown()


@dataclass(frozen=True)
class Target:
    """A ClusterTarget as written, and where it was written ("step extract", "tool wc.cwl")."""

    cluster_id: str | None
    project_uuid: str | None
    where: str
    level: str = "tool"  # "step", "tool" or "workflow": the order in which they are read

    @staticmethod
    def read(requirement: dict[str, Any], where: str, level: str) -> Target:
        def text(key: str) -> str | None:
            value = requirement.get(key)
            return str(value) if value not in (None, "") else None

        return Target(text("cluster_id"), text("project_uuid"), where, level)


@dataclass(frozen=True)
class Choice:
    """One field decided: its value (None: not set), and why ("ClusterTarget on step extract:
    $(inputs.where) = z2222"); `later` when it depends on outputs of earlier steps."""

    value: str | None = None
    why: str = ""
    later: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Placement:
    """Where one container request goes: its cluster and the project that owns it (None: the
    user's home project there). `later`: decided only once earlier steps' outputs exist."""

    cluster: str | None
    project: str | None
    why: str
    project_why: str = ""
    later: bool = False
    error: str | None = None

    @property
    def decided(self) -> bool:
        return not self.later and self.error is None and self.cluster is not None


def own_targets(document: dict[str, Any], level: str, name: str) -> list[Target]:
    """The targets written on a step, tool or workflow itself (its hints, then its requirements)."""
    entries = [*(document.get("hints") or []), *(document.get("requirements") or [])]
    return [Target.read(e, f"{level} {name}", level) for e in entries
            if isinstance(e, dict) and e.get("class") == CLUSTER_TARGET]


def ordered(around: list[tuple[Target, Any]], own: list[tuple[Target, Any]]) -> list[tuple[Target, Any]]:
    """Nearest first: the steps around (innermost first), the tool's own, the workflows around."""
    return [*(t for t in around if t[0].level == "step"), *own, *(t for t in around if t[0].level == "workflow")]


def is_expression(text: str) -> bool:
    return "$(" in text or "${" in text


def evaluate(text: str, inputs: dict[str, Any] | None, requirements: list[Any]) -> Any:
    """A field's value: the literal, or the expression evaluated with the inputs; UNKNOWN when the
    expression names an input that only earlier steps' outputs will give."""
    if not is_expression(text):
        return text
    if inputs is None:
        return UNKNOWN
    later = [name for name, value in inputs.items() if value is UNKNOWN]
    if any(re.search(rf"inputs(\.{re.escape(n)}\b|\[['\"]{re.escape(n)}['\"]\])", text) for n in later):
        return UNKNOWN
    known = {k: v for k, v in inputs.items() if v is not UNKNOWN}
    _quiet.on = True
    try:
        return do_eval(text, known, requirements, None, None, {})
    finally:
        _quiet.on = False


def choose(targets: list[tuple[Target, dict[str, Any] | None]], key: str, requirements: list[Any]) -> Choice:
    """The nearest target that sets `key`, evaluated with the inputs it comes with."""
    for target, inputs in targets:
        text = getattr(target, key)
        if text is None:
            continue
        try:
            value = evaluate(text, inputs, requirements)
        except Exception as exc:  # an expression error is the step's failure, said plainly
            return Choice(None, f"ClusterTarget on {target.where}", error=f"{key} {text}: {exc}")
        shown = f"{text} = {value}" if is_expression(text) else text
        if value is UNKNOWN:
            return Choice(None, f"ClusterTarget on {target.where}: {text}", later=True)
        if value in (None, ""):
            continue  # an empty value inherits, as in the official runner
        if not isinstance(value, str):
            return Choice(None, f"ClusterTarget on {target.where}",
                          error=f"{key} {text} is {value!r}, not a string")
        return Choice(value, f"ClusterTarget on {target.where}: {shown}")
    return Choice()


def place(targets: list[tuple[Target, dict[str, Any] | None]], requirements: list[Any], home: str) -> Placement:
    """Where a step goes, from its targets (nearest first, each with the inputs it is evaluated with)."""
    cluster, project = choose(targets, "cluster_id", requirements), choose(targets, "project_uuid", requirements)
    error = cluster.error or project.error
    later = cluster.later or project.later
    if cluster.value is None and not cluster.later and not cluster.error:
        cluster = Choice(home, "no ClusterTarget names a cluster: home")
    return Placement(cluster.value, project.value, cluster.why, project.why, later, error)

