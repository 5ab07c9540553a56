"""The bytes each pair of clusters will see cross, from the plan and the manifests, and what did.

At most: for each step on cluster B, every block of each collection it mounts that B does not
hold (a step can read no more than its mounts), counted once per step — several steps on B may
each fetch a block before B's keepstore has cached it; for results made on A and brought home,
twice their blocks (read for checksums, copied into the final collection). At least, with cold
caches: the blocks under each File a step is handed from another cluster (scripts, the
summaries a merge reads) and the results brought home. A block cached by an earlier run, or a
reused container, moves less; a run that moves more than "at most" is a bug (`exceeded`).

What moved is counted twice over: by the keepstores (bytes each fetched from each other cluster,
everyone's traffic while the run lasted) and by each container's executor (bytes its mounts read,
by the cluster holding them: `runtime_status.bytesReadByCluster`, which only the executor writes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..executor import READ_BY_CLUSTER
from .facts import Facts
from .plan import LOCAL, Plan

READ_KEY = READ_BY_CLUSTER  # in a container's runtime_status, set by the executor as it finishes


@dataclass
class Crossing:
    source: str
    target: str
    at_least: int = 0
    at_most: int = 0
    why: list[str] = field(default_factory=list)
    keepstores: int | None = None  # fetched by the target's keepstores from the source, during the run
    containers: int | None = None  # read by this run's containers on the target from the source

    @property
    def edge(self) -> str:
        return f"{self.source}→{self.target}"

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.source, "to": self.target, "at_least": self.at_least, "at_most": self.at_most,
                "why": self.why, "keepstores": self.keepstores, "containers": self.containers}


@dataclass
class Outcome:
    """What the run adds to the plan's bounds: the files of the final output (PDH, path), and the
    collections the runner itself read home (a failed step's log)."""

    final: list[tuple[str, str]] = field(default_factory=list)
    runner_read: list[str] = field(default_factory=list)


def crossings(plan: Plan, facts: Facts, outcome: Outcome | None = None) -> dict[str, Crossing]:
    pairs: dict[tuple[str, str], Crossing] = {}
    least: dict[tuple[str, str], dict[str, int]] = {}

    def pair(source: str, target: str) -> Crossing:
        return pairs.setdefault((source, target), Crossing(source, target))

    local_total = sum(plan.local_files.values())
    for item in plan.items.values():
        target = item.cluster
        if target is None or item.problems:
            continue
        for pdh in item.mounts:
            for source, blocks in _sources(facts, pdh, target, plan.home, local_total):
                crossing = pair(source, target)
                crossing.at_most += sum(blocks.values())
                _note(crossing, f"{item.key} mounts {_short(pdh)}")
        for pdh, path in item.given:
            if pdh == LOCAL:
                if target != plan.home:
                    least.setdefault((plan.home, target), {})[path] = plan.local_files.get(path, 0)
                continue
            holders = facts.holders(pdh)
            usable = [h for h in holders.values() if not h.restricted]
            if target not in holders and len(usable) == 1:
                least.setdefault((usable[0].cluster, target), {}).update(usable[0].blocks_of(path))
        if item.output and item.ran_on and item.ran_on != plan.home:
            held = facts.holders(item.output).get(item.ran_on)
            if held is not None:
                crossing = pair(item.ran_on, plan.home)
                crossing.at_most += 2 * sum(held.blocks().values())
                _note(crossing, f"results of {item.key} home")
    for pdh, path in (outcome.final if outcome else []):
        holders = facts.holders(pdh)
        if plan.home not in holders and len(holders) == 1:
            (held,) = holders.values()
            least.setdefault((held.cluster, plan.home), {}).update(held.blocks_of(path))
    for pdh in (outcome.runner_read if outcome else []):
        for held in facts.holders(pdh).values():
            if held.cluster != plan.home:
                crossing = pair(held.cluster, plan.home)
                crossing.at_most += sum(held.blocks().values())
                _note(crossing, f"a failed step's log {_short(pdh)} home")
    for (source, target), blocks in least.items():
        pair(source, target).at_least = sum(blocks.values())
    return {c.edge: c for _, c in sorted(pairs.items())}


def _sources(facts: Facts, pdh: str, target: str, home: str, local_total: int) -> list[tuple[str, dict[str, int]]]:
    """Where a step on `target` reads a collection from (nowhere: it holds it), with its blocks."""
    if pdh == LOCAL:
        return [] if target == home else [(home, {"local": local_total})]
    holders = facts.holders(pdh)
    if target in holders:
        return []
    return [(h.cluster, h.blocks()) for h in holders.values() if not h.restricted]


def _note(crossing: Crossing, why: str) -> None:
    if len(crossing.why) < 6:
        crossing.why.append(why)
    elif len(crossing.why) == 6:
        crossing.why.append("…")


def _short(pdh: str) -> str:
    return pdh if pdh == LOCAL else pdh.split("+")[0][:10] + "…"


def measure(pairs: dict[str, Crossing], plan: Plan, before: dict[str, dict[str, int]] | None,
            after: dict[str, dict[str, int]] | None) -> None:
    """Fill in what moved: the keepstores' counters (before and after the run) and each of this
    run's containers' own counts (a reused container moved nothing for this run)."""
    containers: dict[tuple[str, str], int] = {}
    for item in plan.items.values():
        if item.ran_on is None or item.read is None or item.reused:
            continue
        for source, size in item.read.items():
            if source != item.ran_on and size:
                containers[(source, item.ran_on)] = containers.get((source, item.ran_on), 0) + size
    moved: dict[tuple[str, str], int] = {}
    if before is not None and after is not None:
        for target, counts in after.items():
            for source, total in counts.items():
                if (delta := total - before.get(target, {}).get(source, 0)) > 0:
                    moved[(source, target)] = delta
    for source, target in {*containers, *moved}:
        edge = f"{source}→{target}"
        if edge not in pairs:
            pairs[edge] = Crossing(source, target)
    for crossing in pairs.values():
        key = (crossing.source, crossing.target)
        crossing.containers = containers.get(key, 0)
        crossing.keepstores = moved.get(key, 0) if before is not None and after is not None else None


def exceeded(pairs: dict[str, Crossing]) -> list[str]:
    """Each pair of clusters across which more moved than the plan allowed: a bug to report."""
    found = []
    for crossing in pairs.values():
        for what, value in (("the keepstores counted", crossing.keepstores),
                            ("this run's containers read", crossing.containers)):
            if value is not None and value > crossing.at_most:
                found.append(f"{crossing.edge}: {what} {value} bytes, more than the plan's {crossing.at_most} "
                             "at most (a bug: please report it)")
    return found
