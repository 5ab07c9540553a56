"""The meta-analysis example's forest plot (examples/meta-analysis/merge.py) is the one a researcher
expects: each site with its n, estimate and 95% CI as a line with a square sized by its weight, the
pooled diamond, a vertical line of no effect, an axis in mmHg, the pooled estimate written out."""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "meta-analysis"
SUMMARIES = [
    {"site": "site-z2222", "n_treated": 500, "n_control": 480, "effect": -7.5, "se": 0.6, "min_age": 50},
    {"site": "site-z1111", "n_treated": 1200, "n_control": 1190, "effect": -4.6, "se": 0.3, "min_age": 50},
    {"site": "site-z3333", "n_treated": 800, "n_control": 810, "effect": -5.0, "se": 0.45, "min_age": 50},
]


def merge() -> ModuleType:
    spec = importlib.util.spec_from_file_location("merge_example", EXAMPLE / "merge.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def drawn() -> tuple[ModuleType, list[dict], dict, Any]:
    module = merge()
    summaries = sorted(SUMMARIES, key=lambda s: s["site"])
    pooled = module.pool(summaries)
    table = module.rows(summaries, pooled)
    return module, table, pooled, module.forest_figure(table, pooled)


def texts(figure: Any) -> list[str]:
    found = [t.get_text() for t in figure.texts]
    for axes in figure.axes:
        found += [t.get_text() for t in axes.texts] + [axes.get_xlabel()]
    return found


def test_each_site_is_a_row_with_its_n_estimate_ci_and_weight(drawn: tuple) -> None:
    module, table, _, figure = drawn
    shown = texts(figure)
    weights = [1 / s["se"] ** 2 for s in SUMMARIES]
    for summary, weight in zip(SUMMARIES, weights, strict=True):
        row = next(r for r in table if r["label"] == summary["site"])
        assert summary["site"] in shown
        assert f"{summary['n_treated'] + summary['n_control']:,}" in shown
        assert f"{module.num(row['effect'])} [{module.num(row['low'])}, {module.num(row['high'])}]" in shown
        assert f"{100 * weight / sum(weights):.1f}%" in shown


def test_squares_are_sized_by_weight_and_lines_span_the_ci(drawn: tuple) -> None:
    _, table, _, figure = drawn
    axes = figure.axes[0]
    squares = {round(line.get_xdata()[0], 6): line.get_markersize() for line in axes.lines
               if line.get_marker() == "s"}
    by_weight = sorted(table[:-1], key=lambda r: r["weight"])
    sizes = [squares[round(r["effect"], 6)] for r in by_weight]
    assert len(squares) == 3 and sizes == sorted(sizes) and sizes[0] < sizes[-1]
    spans = []
    for collection in axes.collections:  # the error bars: one segment per site, from its CI's low to high
        for segment in collection.get_segments():
            if segment[0][1] == segment[1][1]:
                spans.append((round(float(segment[0][0]), 6), round(float(segment[1][0]), 6)))
    for row in table[:-1]:
        assert (round(row["low"], 6), round(row["high"], 6)) in spans


def test_the_pooled_diamond_the_null_line_and_the_axis(drawn: tuple) -> None:
    module, table, pooled, figure = drawn
    axes = figure.axes[0]
    diamond = [p for p in axes.patches if len(p.get_xy()) >= 4]
    assert diamond, "no pooled diamond"
    xs = [x for x, _ in diamond[0].get_xy()]
    assert min(xs) == pytest.approx(pooled["ci_low"]) and max(xs) == pytest.approx(pooled["ci_high"])
    verticals = [line for line in axes.lines if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]
    assert any(line.get_xdata()[0] == 0 for line in verticals), "no line of no effect at 0"
    assert "mmHg" in axes.get_xlabel()
    low, high = axes.get_xlim()
    assert low < min(r["low"] for r in table) and high > 0
    shown = " ".join(texts(figure))
    assert f"Pooled difference {module.num(pooled['effect'])} mmHg" in shown
    assert f"95% CI {module.num(pooled['ci_low'])} to {module.num(pooled['ci_high'])}" in shown


def test_the_script_writes_a_matplotlib_png_and_nothing_in_home(tmp_path: Path) -> None:
    for n, summary in enumerate(SUMMARIES):
        (tmp_path / f"s{n}.json").write_text(json.dumps(summary))
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MPLCONFIGDIR"}
    result = subprocess.run([sys.executable, str(EXAMPLE / "merge.py"), "s0.json", "s1.json", "s2.json"],
                            cwd=tmp_path, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    png = (tmp_path / "forest-plot.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1200 and height >= 400
    assert b"Matplotlib" in png[:4096]  # its Software text chunk
    assert list(home.iterdir()) == []  # no font cache in $HOME (in a container, HOME is the output directory)
    assert (tmp_path / "meta-analysis.tsv").read_text().splitlines()[0] == "site\tn\teffect\tci_low\tci_high"
