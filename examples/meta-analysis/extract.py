"""Runs next to one cohort: select the patients the analysis is about and summarise the treatment
effect (difference of mean change, treated minus control, with its standard error). Only this
summary leaves the cohort's cluster.

    python3 extract.py COHORT.csv MIN_AGE > summary.json
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys


def summarise(rows: list[dict[str, str]], min_age: int) -> dict[str, object]:
    chosen = [r for r in rows if int(r["age"]) >= min_age]
    treated = [float(r["sbp_change"]) for r in chosen if r["treatment"] == "1"]
    control = [float(r["sbp_change"]) for r in chosen if r["treatment"] == "0"]
    effect = statistics.fmean(treated) - statistics.fmean(control)
    se = math.sqrt(statistics.variance(treated) / len(treated) + statistics.variance(control) / len(control))
    return {"site": chosen[0]["site"], "n_treated": len(treated), "n_control": len(control),
            "effect": round(effect, 4), "se": round(se, 4), "min_age": min_age}


def main() -> None:
    with open(sys.argv[1], newline="") as handle:
        rows = list(csv.DictReader(handle))
    json.dump(summarise(rows, int(sys.argv[2])), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
