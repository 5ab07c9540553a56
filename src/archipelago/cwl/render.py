"""The plan, and the bytes it allowed beside those that moved, as text (for `archi run` and the demo)."""

from __future__ import annotations

from collections.abc import Iterable

from .bounds import Crossing
from .facts import Facts
from .plan import LOCAL, Item, Plan, inputs_of

MAX_ROWS = 40  # records of one step shown one by one; more are summed up


def size(n: int | None) -> str:
    if n is None:
        return "-"
    if n < 1000:
        return f"{n} B"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[n]) for r in rows) for n in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def plan_text(plan: Plan, facts: Facts, crossings: dict[str, Crossing]) -> str:
    lines = [f"plan of {plan.workflow}: home {plan.home}, federation {', '.join(plan.clusters)} "
             f"({plan.seconds:.2f} s)"]
    lines += _steps(plan)
    lines += _inputs(plan, facts)
    lines.append("bytes that may cross between clusters (from the manifests):")
    if crossings:
        rows = [["from→to", "at least", "at most", "because"]]
        rows += [[c.edge, size(c.at_least), size(c.at_most), "; ".join(c.why)] for c in crossings.values()]
        lines += _table(rows)
    else:
        lines.append("  none")
    if any(i.inputs_later or i.cluster is None for i in plan.items.values()):
        lines.append("  + what the steps decided at run time read, and the results that come home "
                     "(re-planned as they appear)")
    refusals = plan.refusals()
    if refusals:
        lines.append(f"refused: {len(refusals)} problem{'s' if len(refusals) > 1 else ''}, nothing was submitted")
        for message, keys in _grouped(refusals):
            lines.append(f"  {_keys(keys)}: {message}" if keys else f"  {message}")
    return "\n".join(lines)


def _steps(plan: Plan) -> list[str]:
    rows = [["step", "cluster", "why", "project", "reuse"]]
    by_label: dict[str, list[Item]] = {}
    for item in plan.items.values():
        by_label.setdefault(item.label, []).append(item)
    for items in by_label.values():
        shown = items if len(items) <= MAX_ROWS else items[:MAX_ROWS // 2]
        for item in shown:
            rows.append([item.key + (" (if its condition holds)" if item.conditional else ""),
                         item.cluster or "at run time", _why(item), item.project or "your home project",
                         item.reuse])
        if len(shown) < len(items):
            clusters: dict[str, int] = {}
            for item in items[len(shown):]:
                clusters[item.cluster or "at run time"] = clusters.get(item.cluster or "at run time", 0) + 1
            rows.append([f"… {len(items) - len(shown)} more records of {items[0].label}",
                         ", ".join(f"{n} on {c}" for c, n in sorted(clusters.items())), "", "", ""])
    return ["steps:", *_table(rows)]


def _why(item: Item) -> str:
    why = item.why or "decided at run time"
    if item.records_later:
        why += "; its records come from earlier steps"
    elif item.inputs_later:
        why += "; some inputs come from earlier steps"
    return why


def _inputs(plan: Plan, facts: Facts) -> list[str]:
    rows = [["collection", "held by", "size", "residency", "read by"]]
    readers: dict[str, list[str]] = {}
    for item in plan.items.values():
        for pdh in item.mounts:
            readers.setdefault(pdh, []).append(item.key)
    outputs = {i.output: i.key for i in plan.items.values() if i.output}
    held = inputs_of(plan, facts)
    for h in held[:MAX_ROWS]:
        what = f"{h.pdh} ({h.name})" if h.pdh not in outputs else f"{h.pdh} (results of {outputs[h.pdh]})"
        rows.append([what, h.cluster, size(h.size), "stays on its cluster" if h.restricted else "-",
                     _keys(readers.get(h.pdh, []))])
    if len(held) > MAX_ROWS:
        rows.append([f"… {len(held) - MAX_ROWS} more collections", "", size(sum(h.size for h in held[MAX_ROWS:])),
                     "", ""])
    if plan.local_files:
        rows.append([f"{LOCAL}: {', '.join(sorted(p.rsplit('/', 1)[-1] for p in plan.local_files))}",
                     f"{plan.home} (uploaded at the start)", size(sum(plan.local_files.values())), "-",
                     _keys(readers.get(LOCAL, []))])
    return ["inputs:", *_table(rows)] if len(rows) > 1 else ["inputs: none"]


def _keys(keys: Iterable[str | None]) -> str:
    found = [k for k in keys if k]
    return ", ".join(found) if len(found) <= 4 else f"{', '.join(found[:3])} and {len(found) - 3} more"


def _grouped(refusals: list[tuple[str | None, str]]) -> list[tuple[str, list[str | None]]]:
    groups: dict[str, list[str | None]] = {}
    for key, message in refusals:
        groups.setdefault(message, []).append(key)
    return list(groups.items())


def moved_text(crossings: dict[str, Crossing], exceeded: list[str]) -> str:
    lines = ["bytes between clusters, planned and moved:"]
    if not crossings:
        return lines[0] + " none planned, none moved"
    rows = [["from→to", "at least", "at most", "keepstores", "containers"]]
    rows += [[c.edge, size(c.at_least), size(c.at_most), size(c.keepstores), size(c.containers)]
             for c in crossings.values()]
    lines += _table(rows)
    lines += [f"  MORE THAN PLANNED: {e}" for e in exceeded] or ["  within the plan's bounds"]
    return "\n".join(lines)
