"""Runs at home on the sites' summaries: a fixed-effect (inverse-variance) meta-analysis of the
per-cohort effects with its 95% confidence interval, as a table, a JSON summary and a forest plot
(PNG, drawn with the standard library).

    python3 merge.py SUMMARY.json... (writes meta-analysis.tsv, meta-analysis.json, forest-plot.png)
"""

from __future__ import annotations

import json
import math
import struct
import sys
import zlib

Z95 = 1.959964


def pool(summaries: list[dict[str, float]]) -> dict[str, float]:
    weights = [1 / s["se"] ** 2 for s in summaries]
    effect = sum(w * s["effect"] for w, s in zip(weights, summaries, strict=True)) / sum(weights)
    se = math.sqrt(1 / sum(weights))
    q = sum(w * (s["effect"] - effect) ** 2 for w, s in zip(weights, summaries, strict=True))
    return {"effect": effect, "se": se, "ci_low": effect - Z95 * se, "ci_high": effect + Z95 * se, "q": q,
            "i2": max(0.0, (q - (len(summaries) - 1)) / q) if q > 0 else 0.0}


def png(width: int, height: int, pixels: list[bytearray]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def forest_plot(rows: list[tuple[str, float, float, float]]) -> bytes:
    """One line per site (effect and CI), the pooled estimate last, and the line of no effect."""
    width, row_height = 480, 40
    height = row_height * (len(rows) + 1)
    pixels = [bytearray(b"\xff\xff\xff" * width) for _ in range(height)]
    low = min(r[2] for r in rows) - 1
    high = max(max(r[3] for r in rows), 0) + 1

    def x(value: float) -> int:
        return int(40 + (value - low) / (high - low) * (width - 80))

    def box(x0: int, x1: int, y0: int, y1: int, color: bytes) -> None:
        for y in range(max(0, y0), min(height, y1)):
            for xx in range(max(0, x0), min(width, x1)):
                pixels[y][3 * xx:3 * xx + 3] = color

    box(x(0), x(0) + 1, 0, height, b"\x99\x99\x99")  # no effect
    for n, (_name, effect, lo, hi) in enumerate(rows):
        y = row_height * (n + 1)
        color = b"\xc0\x30\x30" if n == len(rows) - 1 else b"\x20\x40\xa0"
        box(x(lo), x(hi) + 1, y - 1, y + 2, color)
        size = 8 if n == len(rows) - 1 else 5
        box(x(effect) - size, x(effect) + size, y - size, y + size, color)
    return png(width, height, pixels)


def main() -> None:
    summaries = []
    for path in sys.argv[1:]:
        with open(path) as handle:
            summaries.append(json.load(handle))
    summaries.sort(key=lambda s: s["site"])
    pooled = pool(summaries)
    lines = ["site\tn\teffect\tci_low\tci_high"]
    rows = []
    for s in summaries:
        lo, hi = s["effect"] - Z95 * s["se"], s["effect"] + Z95 * s["se"]
        lines.append(f"{s['site']}\t{s['n_treated'] + s['n_control']}\t{s['effect']:.2f}\t{lo:.2f}\t{hi:.2f}")
        rows.append((s["site"], s["effect"], lo, hi))
    total = sum(s["n_treated"] + s["n_control"] for s in summaries)
    lines.append(f"pooled\t{total}\t{pooled['effect']:.2f}\t{pooled['ci_low']:.2f}\t{pooled['ci_high']:.2f}")
    rows.append(("pooled", pooled["effect"], pooled["ci_low"], pooled["ci_high"]))
    with open("meta-analysis.tsv", "w") as handle:
        handle.write("\n".join(lines) + "\n")
    with open("meta-analysis.json", "w") as handle:
        json.dump({"sites": summaries, "pooled": pooled, "n": total}, handle, indent=2)
    with open("forest-plot.png", "wb") as handle:
        handle.write(forest_plot(rows))


if __name__ == "__main__":
    main()
