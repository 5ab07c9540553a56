"""The container requests a workflow will make, as far as its job order tells: every
CommandLineTool invocation (each scatter record, each step of a subworkflow) with the inputs it
will be given. Inputs that come from earlier steps' outputs exist only at run time: they are
UNKNOWN here, and whatever depends on them (a ClusterTarget expression, a scatter over them, a
`when`) is decided at run time.

The run names the same invocations the same way (cwl/tool.py builds the same keys from cwltool's
own scatter), so the plan and what ran can be set side by side.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cwl_utils.expression import do_eval
from cwltool.process import Process, shortname

from .targets import UNKNOWN, Target, is_expression, ordered, own_targets

Chain = list[tuple[Target, dict[str, Any] | None]]  # the enclosing steps' targets, innermost first


@dataclass
class Invocation:
    key: str  # "extract[2]", "sub[0]/inner", "merge"
    label: str  # the step path without records: "extract"
    tool: Process
    inputs: dict[str, Any] | None  # the tool's inputs by name (values may be UNKNOWN); None: all unknown
    chain: Chain = field(default_factory=list)
    conditional: bool = False  # a `when` that only the run can evaluate
    records_later: bool = False  # a scatter over outputs of earlier steps: how many, only the run knows

    def targets(self) -> Chain:
        name = self.tool.tool.get("id", "").rsplit("/", 1)[-1].split("#")[0] or self.label
        return ordered(self.chain, [(t, self.inputs) for t in own_targets(self.tool.tool, "tool", name)])


def key_of(path: list[tuple[str, tuple[int, ...] | None]]) -> str:
    return "/".join(f"{name}[{','.join(map(str, index))}]" if index is not None else name for name, index in path)


def invocations(process: Process, job_order: dict[str, Any]) -> Iterator[Invocation]:
    """Every CommandLineTool invocation of `process` run with `job_order` (input name -> value)."""
    if process.tool.get("class") == "CommandLineTool":
        yield Invocation("main", "main", process, _tool_inputs(process, job_order))
    elif process.tool.get("class") == "Workflow":
        yield from _workflow(process, job_order, [], [])


def _name(process: Any) -> str:
    return str(process.tool.get("id", "")).rsplit("/", 1)[-1].split("#")[0] or "main"


def _workflow(workflow: Any, values: dict[str, Any] | None, path: list[Any], chain: Chain) -> Iterator[Invocation]:
    inputs = {inp["id"]: shortname(inp["id"]) for inp in workflow.tool["inputs"]}
    chain = [*chain, *((t, values) for t in own_targets(workflow.tool, "workflow", _name(workflow)))]
    for step in workflow.steps:
        name = shortname(step.id)
        step_values = _step_inputs(step, inputs, values)
        targets = own_targets(step.tool, "step", name)
        yield from _step(step, name, step_values, [*path], targets, chain, workflow.requirements)


def _step(step: Any, name: str, values: dict[str, Any] | None, path: list[Any], targets: list[Target],
          chain: Chain, requirements: list[Any]) -> Iterator[Invocation]:
    scatter = [shortname(s) for s in step.tool.get("scatter", []) or []]
    if isinstance(step.tool.get("scatter"), str):
        scatter = [shortname(step.tool["scatter"])]
    records: list[tuple[tuple[int, ...] | None, dict[str, Any] | None]]
    later = False
    if not scatter:
        records = [(None, values)]
    elif values is None or any(values.get(s) is UNKNOWN or not isinstance(values.get(s), list) for s in scatter):
        records, later = [((), None)], True
    else:
        records = list(_scatter(values, scatter, step.tool.get("scatterMethod") or "dotproduct"))
    for index, record in records:
        record = _value_from(step, record, requirements)
        when = _when(step, record, requirements)
        if when is False:
            continue
        here = [*path, (name, index if not later else None)]
        inner = [*((t, record) for t in targets), *chain]
        embedded = step.embedded_tool
        kind = embedded.tool.get("class")
        tool_values = None if record is None else {k: v for k, v in record.items()}
        if kind == "CommandLineTool":
            key = key_of(here) + ("[*]" if later else "")
            yield Invocation(key, "/".join(n for n, _ in here), embedded, _tool_inputs(embedded, tool_values),
                             inner, conditional=when is None, records_later=later)
        elif kind == "Workflow":
            for found in _workflow(embedded, _tool_inputs(embedded, tool_values), here, inner):
                found.conditional = found.conditional or when is None
                found.records_later = found.records_later or later
                yield found


def _step_inputs(step: Any, workflow_inputs: dict[str, str], values: dict[str, Any] | None) -> dict[str, Any] | None:
    """The step's inputs by name: from the workflow's inputs, UNKNOWN from other steps' outputs."""
    found: dict[str, Any] = {}
    for inp in step.tool["inputs"]:
        name = shortname(inp["id"])
        sources = inp.get("source")
        sources = [sources] if isinstance(sources, str) else list(sources or [])
        picked: list[Any] = []
        for source in sources:
            if source in workflow_inputs and values is not None:
                picked.append(values.get(workflow_inputs[source]))
            else:
                picked.append(UNKNOWN)
        if not sources:
            value: Any = None
        elif any(v is UNKNOWN for v in picked):
            value = UNKNOWN
        elif len(sources) == 1 and "linkMerge" not in inp:
            value = picked[0]
        elif inp.get("linkMerge") == "merge_flattened":
            value = [x for v in picked for x in (v if isinstance(v, list) else [v])]
        else:
            value = picked
        if value is not UNKNOWN and "pickValue" in inp and isinstance(value, list):
            kept = [v for v in value if v is not None]
            value = kept if inp["pickValue"] == "all_non_null" else (kept[0] if kept else None)
        if value is None and "default" in inp:
            value = inp["default"]
        found[name] = value
    return found


def _scatter(values: dict[str, Any], keys: list[str], method: str) -> Iterator[tuple[tuple[int, ...], dict[str, Any]]]:
    if method == "dotproduct":
        for n in range(min(len(values[k]) for k in keys)):
            yield (n,), {**values, **{k: values[k][n] for k in keys}}
        return
    ranges = [range(len(values[k])) for k in keys]
    for flat, combination in enumerate(itertools.product(*ranges)):
        record = {**values, **{k: values[k][i] for k, i in zip(keys, combination, strict=True)}}
        yield ((flat,) if method == "flat_crossproduct" else combination), record


def _value_from(step: Any, record: dict[str, Any] | None, requirements: list[Any]) -> dict[str, Any] | None:
    """Step inputs' valueFrom, evaluated with the record (each sees the others before theirs)."""
    exprs = {shortname(i["id"]): i["valueFrom"] for i in step.tool["inputs"] if "valueFrom" in i}
    if record is None or not exprs:
        return record
    out = dict(record)
    for name, expr in exprs.items():
        if any(v is UNKNOWN for v in record.values()) and is_expression(str(expr)):
            out[name] = UNKNOWN
            continue
        try:
            out[name] = do_eval(expr, record, requirements, None, None, {}, context=record.get(name))
        except Exception:  # the run will say what is wrong with it, with cwltool's words
            out[name] = UNKNOWN
    return out


def _when(step: Any, record: dict[str, Any] | None, requirements: list[Any]) -> bool | None:
    """True or False if the plan can tell, None if only the run can."""
    if "when" not in step.tool:
        return True
    if record is None or any(v is UNKNOWN for v in record.values()):
        return None
    try:
        value = do_eval(step.tool["when"], record, requirements, None, None, {})
    except Exception:
        return None
    return value if isinstance(value, bool) else None


def _tool_inputs(tool: Any, values: dict[str, Any] | None) -> dict[str, Any] | None:
    """The inputs a process declares, from the values it is given, its defaults where they are missing."""
    if values is None:
        return None
    found: dict[str, Any] = {}
    for inp in tool.tool["inputs"]:
        name = shortname(inp["id"])
        value = values.get(name)
        if value is None and "default" in inp:
            value = inp["default"]
        found[name] = value
    return found
