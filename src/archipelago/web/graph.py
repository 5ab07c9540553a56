"""A run's steps laid out as a graph: each step in the column after the last step it reads from (a
long column wraps into several), edges from producer to consumer. Drawn by the run page's SVG."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .runs import Run, Step

NODE_W, NODE_H = 176, 44
GAP_X, GAP_Y = 48, 12
ROWS = 20  # steps in one column before it wraps
MARGIN = 8


@dataclass
class Node:
    step: Step
    x: int
    y: int
    colour: int

    @property
    def label(self) -> str:
        name = self.step.name
        return name if len(name) <= 22 else name[:21] + "…"


@dataclass
class Edge:
    source: str
    target: str
    path: str  # SVG path data


@dataclass
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int


def _layers(run: Run) -> dict[str, int]:
    parents: dict[str, set[str]] = {s.uuid: set() for s in run.steps}
    for source, target in run.edges():
        parents[target].add(source)
    layer: dict[str, int] = {}
    for _ in range(len(run.steps) + 1):  # longest path from a source; bounded even if the data had a loop
        changed = False
        for uuid, above in parents.items():
            depth = 1 + max((layer.get(p, 0) for p in above), default=-1)
            if layer.get(uuid) != depth:
                layer[uuid], changed = depth, True
        if not changed:
            break
    return layer


def layout(run: Run, colour: Callable[[str], int]) -> Layout:
    layers = _layers(run)
    columns: dict[int, list[Step]] = {}
    for step in run.steps:
        columns.setdefault(layers.get(step.uuid, 0), []).append(step)
    nodes: dict[str, Node] = {}
    x = MARGIN
    height = 0
    for depth in sorted(columns):
        steps = sorted(columns[depth], key=lambda s: (s.cluster, s.name))
        for start in range(0, len(steps), ROWS):
            chunk = steps[start:start + ROWS]
            for row, step in enumerate(chunk):
                y = MARGIN + row * (NODE_H + GAP_Y)
                nodes[step.uuid] = Node(step, x, y, colour(step.cluster))
                height = max(height, y + NODE_H + MARGIN)
            x += NODE_W + GAP_X
    edges = []
    for source, target in run.edges():
        a, b = nodes[source], nodes[target]
        x1, y1, x2, y2 = a.x + NODE_W, a.y + NODE_H // 2, b.x, b.y + NODE_H // 2
        bend = max(GAP_X // 2, (x2 - x1) // 2)
        edges.append(Edge(source, target, f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"))
    return Layout(list(nodes.values()), edges, max(x - GAP_X + MARGIN, NODE_W + 2 * MARGIN), max(height, NODE_H))
