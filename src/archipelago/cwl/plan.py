"""The plan of a run, before it starts: for every step and every scatter record, the cluster it
will run on and why, the project its request goes to, the collections it mounts (each with the
cluster that holds it, its size and residency) and whether a container may be reused; and every
reason to refuse the run up front (an unknown or unreachable cluster, a project not on its cluster
or not writable, a restricted collection a step elsewhere would have to read, a missing input).

Built from the workflow, the job order and what each cluster answers (cwl/facts.py), before
anything is written anywhere. What depends on outputs of earlier steps is marked as decided at run
time, and the run re-plans each such record as it is decided (`decide`), with the same checks.
The bytes each pair of clusters will see cross are in cwl/bounds.py.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cwltool.process import Process

from .facts import Facts
from .fsaccess import PREFIX, split
from .joborder import find_objects, local_path
from .targets import UNKNOWN, Placement, is_expression, place
from .walk import Invocation, invocations

LOCAL = "local files"  # stands for the collection local inputs will be uploaded into, at home


@dataclass
class Item:
    """One container request the run will make (a step, or one record of a scattered step)."""

    key: str
    label: str
    cluster: str | None  # None: decided at run time
    why: str
    project: str | None = None  # None: the user's home project on that cluster
    project_why: str = ""
    reuse: str = "may reuse"
    mounts: list[str] = field(default_factory=list)  # PDHs (LOCAL: files uploaded at the start)
    given: list[tuple[str, str]] = field(default_factory=list)  # (PDH, path) of Files handed to it
    inputs_later: bool = False  # some inputs are earlier steps' outputs: mounts known at run time
    conditional: bool = False
    records_later: bool = False
    decided_at_run_time: bool = False  # placed by the run (it was not known before)
    problems: list[str] = field(default_factory=list)
    # what happened (filled in by the run)
    ran_on: str | None = None
    request: str | None = None
    status: str | None = None
    reused: bool = False
    read: dict[str, int] | None = None  # its container's own count: bytes read, by the cluster holding them
    output: str | None = None  # its output collection's PDH

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class Plan:
    workflow: str
    home: str
    clusters: list[str]
    items: dict[str, Item] = field(default_factory=dict)
    local_files: dict[str, int] = field(default_factory=dict)  # path -> size, uploaded at the start
    problems: list[tuple[str | None, str]] = field(default_factory=list)  # (step and record, what)
    seconds: float = 0.0

    def refusals(self) -> list[tuple[str | None, str]]:
        return [*self.problems, *((i.key, p) for i in self.items.values() for p in i.problems)]

    def as_dict(self, facts: Facts | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "workflow": self.workflow, "home": self.home, "clusters": self.clusters,
            "seconds": round(self.seconds, 3), "local_files": self.local_files,
            "steps": [i.as_dict() for i in self.items.values()],
            "refused": [{"step": k, "problem": p} for k, p in self.refusals()],
        }
        if facts is not None:
            out["inputs"] = [{"pdh": h.pdh, "cluster": h.cluster, "uuid": h.uuid, "name": h.name, "size": h.size,
                              "stays_on_its_cluster": h.restricted} for h in inputs_of(self, facts)]
        return out


def make_plan(process: Process, job_order: dict[str, Any], facts: Facts, reuse: bool, name: str) -> Plan:
    """The plan of running `process` with `job_order` (local files not yet uploaded)."""
    started = time.perf_counter()
    plan = Plan(name, facts.home_id, facts.clusters)
    # the clusters are asked about the job order's collections while the workflow is walked
    named = {split(str(v["location"]))[0] for v in find_objects(
        job_order, ("File", "Directory"), lambda v: str(v.get("location", "")).startswith(PREFIX))}
    asking = threading.Thread(target=facts.survey, args=(named,), daemon=True)
    asking.start()
    # in the order they can run: what waits for earlier steps' outputs after what does not
    found = sorted(invocations(process, job_order),
                   key=lambda i: i.inputs is None or any(v is UNKNOWN for v in i.inputs.values()))
    for invocation in found:
        placement = place(invocation.targets(), invocation.tool.requirements, facts.home_id)
        item = item_for(invocation, placement, reuse)
        _mounts(item, invocation.inputs, plan.local_files)
        plan.items[item.key] = item
    asking.join()
    check(plan, list(plan.items.values()), facts)
    plan.seconds = time.perf_counter() - started
    return plan


def item_for(invocation: Invocation, placement: Placement, reuse: bool) -> Item:
    item = Item(invocation.key, invocation.label, None if placement.later else placement.cluster, placement.why,
                placement.project, placement.project_why, _reuse(invocation.tool, invocation.inputs, reuse),
                inputs_later=invocation.inputs is None or any(v is UNKNOWN for v in invocation.inputs.values()),
                conditional=invocation.conditional, records_later=invocation.records_later)
    if placement.error:
        item.problems.append(f"arv:ClusterTarget: {placement.error}")
    return item


def decide(plan: Plan, facts: Facts, key: str, label: str, placement: Placement, mounts: set[str],
           given: list[tuple[str, str]], reuse: str) -> Item:
    """A record placed by the run (its inputs now exist): planned again with the same checks; its
    problems are the reasons the run must not submit it."""
    before = plan.items.get(key)
    placeholder = re.sub(r"\[[\d,]+\]$", "[*]", key)  # the records it stood for are being decided
    if placeholder != key and plan.items.get(placeholder, Item("", "", None, "")).records_later:
        before = plan.items.pop(placeholder)
    item = Item(key, label, placement.cluster, placement.why, placement.project, placement.project_why, reuse,
                sorted(mounts), list(given), decided_at_run_time=before is None or before.cluster is None
                or before.inputs_later)
    if placement.error:
        item.problems.append(f"arv:ClusterTarget: {placement.error}")
    plan.items[key] = item
    check(plan, [item], facts)
    return item


def check(plan: Plan, items: list[Item], facts: Facts) -> None:
    """Every reason to refuse these items, asked of the clusters all at once."""
    placed = [i for i in items if i.cluster is not None and not i.problems]
    in_use = {i.cluster for i in placed if i.cluster is not None}
    facts.survey({p for i in placed for p in i.mounts if p != LOCAL})
    facts.reach({i.cluster for i in placed if i.cluster is not None})
    facts.check_projects({(i.cluster, i.project) for i in placed if i.project and i.cluster and facts.known(i.cluster)})
    for cluster in sorted(in_use):
        if not facts.known(cluster):
            continue
        if cluster in facts.unreachable:
            for item in placed:
                if item.cluster == cluster:
                    item.problems.append(f"cluster {cluster} cannot be reached: {facts.unreachable[cluster]}")
    for item in placed:
        assert item.cluster is not None
        if not facts.known(item.cluster):
            item.problems.append(f"unknown or invalid cluster id {item.cluster!r} "
                                 f"(this federation: {', '.join(facts.clusters)})")
            continue
        if item.project:
            project = facts.project(item.cluster, item.project)
            if project.problem:
                item.problems.append(project.problem)
        item.problems.extend(_read_problems(item, facts))
    for path, size in plan.local_files.items():
        if size < 0:
            plan.problems.append((None, f"input {path}: no such file or directory"))
            plan.local_files[path] = 0


def _read_problems(item: Item, facts: Facts) -> list[str]:
    """What this item mounts that it could not read where it runs."""
    problems = []
    paths: dict[str, list[str]] = {}
    for pdh, path in item.given:
        paths.setdefault(pdh, []).append(path)
    for pdh in item.mounts:
        if pdh == LOCAL:
            continue
        holders = facts.holders(pdh)
        if item.cluster in holders:
            usable = [holders[str(item.cluster)]]
        else:
            usable = [h for h in holders.values() if not h.restricted]
        if not usable:
            restricted = sorted(h.cluster for h in holders.values() if h.restricted)
            if restricted:
                held = holders[restricted[0]]
                problems.append(f"collection {pdh} ({held.name}) stays on cluster {restricted[0]} (residency): "
                                f"a step on {item.cluster} would have to read it")
            else:
                silent = f" ({', '.join(sorted(facts.unreachable))} did not answer)" if facts.unreachable else ""
                problems.append(f"input collection {pdh}: missing or not readable{silent}")
            continue
        for path in paths.get(pdh, []):
            if usable[0].has(path) is False:
                problems.append(f"input keep:{pdh}/{path}: not in the collection")
    return problems


def _mounts(item: Item, inputs: dict[str, Any] | None, local_files: dict[str, int]) -> None:
    """The collections an item mounts (every keep: location in its inputs), the Files it is handed
    directly, and the local files it reads (uploaded at the start)."""
    if inputs is None:
        return
    mounts: set[str] = set()
    for obj in find_objects(inputs, ("File", "Directory"), lambda v: bool(v.get("location") or v.get("path"))):
        location = str(obj.get("location") or obj.get("path"))
        if location.startswith(PREFIX):
            mounts.add(split(location)[0])
        elif not location.startswith("_:"):
            source = local_path(location, Path("."))
            mounts.add(LOCAL)
            if str(source) not in local_files:
                local_files[str(source)] = _size(source)
    for value in inputs.values():
        for obj in value if isinstance(value, list) else [value]:
            if isinstance(obj, dict) and obj.get("class") == "File":
                location = str(obj.get("location") or "")
                if location.startswith(PREFIX):
                    item.given.append(split(location))
                elif location and not location.startswith("_:"):
                    item.given.append((LOCAL, str(local_path(location, Path(".")))))
    item.mounts = sorted(mounts)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return -1  # missing: a refusal


def _reuse(tool: Process, inputs: dict[str, Any] | None, reuse: bool) -> str:
    if not reuse:
        return "fresh (--no-reuse)"
    requirement, _ = tool.get_requirement("WorkReuse")
    if not requirement:
        return "may reuse"
    enabled = requirement.get("enableReuse", True)
    if isinstance(enabled, str) and is_expression(enabled):
        return "decided at run time (WorkReuse)"
    return "may reuse" if enabled else "fresh (WorkReuse)"


def inputs_of(plan: Plan, facts: Facts) -> list[Any]:
    """The input collections the plan's steps mount, as the clusters hold them."""
    seen: dict[tuple[str, str], Any] = {}
    for item in plan.items.values():
        for pdh in item.mounts:
            for cluster, held in facts.holders(pdh).items():
                seen.setdefault((pdh, cluster), held)
    return [seen[k] for k in sorted(seen)]
