"""Runs at home on the sites' summaries: a fixed-effect (inverse-variance) meta-analysis of the
per-cohort effects with its 95% confidence interval, as a table, a JSON summary and a forest plot
(PNG, drawn with matplotlib: each site's n, estimate and 95% CI, squares sized by weight, the pooled
diamond, the line of no effect, the axis in mmHg).

    python3 merge.py SUMMARY.json... (writes meta-analysis.tsv, meta-analysis.json, forest-plot.png)
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from typing import Any

Z95 = 1.959964
PLOT = "forest-plot.png"
OUTCOME = "Change in systolic blood pressure, treated minus control (mmHg)"


def pool(summaries: list[dict[str, float]]) -> dict[str, float]:
    weights = [1 / s["se"] ** 2 for s in summaries]
    effect = sum(w * s["effect"] for w, s in zip(weights, summaries, strict=True)) / sum(weights)
    se = math.sqrt(1 / sum(weights))
    q = sum(w * (s["effect"] - effect) ** 2 for w, s in zip(weights, summaries, strict=True))
    return {"effect": effect, "se": se, "ci_low": effect - Z95 * se, "ci_high": effect + Z95 * se, "q": q,
            "i2": max(0.0, (q - (len(summaries) - 1)) / q) if q > 0 else 0.0}


def rows(summaries: list[dict[str, Any]], pooled: dict[str, float]) -> list[dict[str, Any]]:
    """One row per site (its n, estimate, 95% CI and weight), then the pooled estimate."""
    total_weight = sum(1 / s["se"] ** 2 for s in summaries)
    out = [{"label": s["site"], "n": s["n_treated"] + s["n_control"], "effect": s["effect"],
            "low": s["effect"] - Z95 * s["se"], "high": s["effect"] + Z95 * s["se"],
            "weight": (1 / s["se"] ** 2) / total_weight} for s in summaries]
    out.append({"label": "Pooled (fixed effect)", "n": sum(r["n"] for r in out), "effect": pooled["effect"],
                "low": pooled["ci_low"], "high": pooled["ci_high"], "weight": 1.0})
    return out


def forest_figure(table: list[dict[str, Any]], pooled: dict[str, float]) -> Any:
    """The forest plot as a matplotlib Figure (no display needed: it is only ever saved)."""
    os.environ.setdefault("MPLCONFIGDIR", tempfile.mkdtemp(prefix="matplotlib-"))  # its font cache: not in $HOME
    try:
        from matplotlib.figure import Figure
    except ModuleNotFoundError:
        sys.exit(f"merge.py draws the forest plot with matplotlib, which {sys.executable} does not have: install it "
                 "there, or put a Python environment that has it first on the containers' PATH (containers.host_path)")
    from matplotlib.patches import Polygon
    from matplotlib.transforms import blended_transform_factory

    sites, total = table[:-1], table[-1]
    count = len(sites)
    width, row_inches, top_inches, bottom_inches = 11.0, 0.36, 1.15, 1.05
    height = top_inches + row_inches * (count + 3.2) + bottom_inches
    figure = Figure(figsize=(width, height), dpi=150)
    axes = figure.add_axes((3.55 / width, bottom_inches / height, 4.05 / width,
                            row_inches * (count + 3.2) / height))
    text = blended_transform_factory(figure.transFigure, axes.transData)  # x across the page, y as the rows
    y = {id(row): count - i + 0.5 for i, row in enumerate(sites)} | {id(total): 0.0}
    blue, dark, grey = "#2b5d9b", "#1a1a1a", "#8c8c8c"
    for row in sites:
        axes.errorbar([row["effect"]], [y[id(row)]], xerr=[[row["effect"] - row["low"]], [row["high"] - row["effect"]]],
                      fmt="none", ecolor=blue, elinewidth=1.4, capsize=3.5, capthick=1.4)
        axes.plot([row["effect"]], [y[id(row)]], marker="s", color=blue, linestyle="none",
                  markersize=3 + 8 * math.sqrt(row["weight"]))  # the square's area follows the site's weight
    axes.add_patch(Polygon([(total["low"], 0), (total["effect"], 0.3), (total["high"], 0), (total["effect"], -0.3)],
                           closed=True, facecolor=dark, edgecolor=dark))
    axes.plot([0, 0], [-0.6, count + 1], color=grey, linewidth=1.1, zorder=0)  # the line of no effect
    axes.plot([total["effect"]] * 2, [-0.6, count + 1], color=dark, linewidth=0.8, linestyle=(0, (4, 3)), zorder=0)
    low, high = min(min(r["low"] for r in table), 0.0), max(max(r["high"] for r in table), 0.0)
    pad = (high - low) * 0.08 or 1.0
    axes.set_xlim(low - pad, high + pad)
    axes.set_ylim(-0.7, count + 2.5)
    axes.set_yticks([])
    for side in ("left", "right", "top"):
        axes.spines[side].set_visible(False)
    axes.set_xlabel(OUTCOME, fontsize=9)
    axes.tick_params(axis="x", labelsize=9)
    for x, words, align in ((0.0, "← favours treatment", "left"), (1.0, "favours control →", "right")):
        axes.annotate(words, (x, 0), xycoords="axes fraction", xytext=(0, -44), textcoords="offset points",
                      fontsize=8, color="#555555", ha=align)
    header = count + 1.6
    columns = (
        (0.3, "Site", [r["label"] for r in table], "left"),
        (3.3, "n", [f"{r['n']:,}" for r in table], "right"),
        (7.85, "Difference [95% CI]", [f"{num(r['effect'])} [{num(r['low'])}, {num(r['high'])}]" for r in table],
         "left"),
        (10.7, "Weight", [f"{100 * r['weight']:.1f}%" for r in table], "right"),
    )
    for inches, title, cells, align in columns:
        figure.text(inches / width, header, title, transform=text, fontsize=9, fontweight="bold", ha=align,
                    va="center")
        for row, cell in zip(table, cells, strict=True):
            figure.text(inches / width, y[id(row)], cell, transform=text, fontsize=9, ha=align, va="center",
                        fontweight="bold" if row is total else "normal")
    for line_y in (count + 1.1, 0.75):
        figure.add_artist(axes.plot([0.2 / width, 10.8 / width], [line_y] * 2, transform=text, color="#c8c8c8",
                                    linewidth=0.8, clip_on=False)[0])
    figure.text(0.3 / width, 1 - 0.35 / height, "Treatment effect on systolic blood pressure, by site",
                fontsize=12, fontweight="bold", va="center")
    figure.text(0.3 / width, 1 - 0.8 / height,
                f"Fixed-effect (inverse-variance) meta-analysis of {count} sites, n = {total['n']:,}\n"
                f"Pooled difference {num(pooled['effect'])} mmHg (95% CI {num(pooled['ci_low'])} to "
                f"{num(pooled['ci_high'])}); heterogeneity Q = {pooled['q']:.1f} (df = {count - 1}), "
                f"I² = {100 * pooled['i2']:.0f}%", fontsize=9, color="#333333", va="center", linespacing=1.5)
    return figure


def num(value: float) -> str:
    """A number as the axis writes it (a true minus sign)."""
    return f"{value:.2f}".replace("-", "\N{MINUS SIGN}")


def main() -> None:
    summaries = []
    for path in sys.argv[1:]:
        with open(path) as handle:
            summaries.append(json.load(handle))
    summaries.sort(key=lambda s: s["site"])
    pooled = pool(summaries)
    table = rows(summaries, pooled)
    lines = ["site\tn\teffect\tci_low\tci_high"]
    for row in table:
        label = "pooled" if row is table[-1] else row["label"]
        lines.append(f"{label}\t{row['n']}\t{row['effect']:.2f}\t{row['low']:.2f}\t{row['high']:.2f}")
    with open("meta-analysis.tsv", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open("meta-analysis.json", "w") as handle:
        json.dump({"sites": summaries, "pooled": pooled, "n": table[-1]["n"]}, handle, indent=2)
    forest_figure(table, pooled).savefig(PLOT)


if __name__ == "__main__":
    main()
