"""Make the example's cohorts: tables of patients of one site each, in a trial of a treatment that
lowers systolic blood pressure (the effect, the noise and the ages differ by site).

    python3 generate.py                   the three cohorts job.yml names, in cohorts/ beside this file
    python3 generate.py SITE SEED ROWS    one cohort, on standard output
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path
from typing import TextIO

JOB_COHORTS = {"site-z1111": 1, "site-z2222": 2, "site-z3333": 3}  # site -> seed, as `make demo` makes them
JOB_ROWS = 40_000


def cohort(site: str, seed: int, rows: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    effect = -4.0 - rng.random() * 4  # this site's true effect, mmHg
    table = []
    for n in range(rows):
        age = rng.randint(30, 85)
        treated = rng.random() < 0.5
        baseline = rng.gauss(145 + (age - 55) * 0.3, 12)
        change = rng.gauss(-1.0 + (effect if treated else 0.0), 9.0)
        table.append({"patient_id": f"{site}-{n:06d}", "site": site, "age": age,
                      "sex": rng.choice("FM"), "treatment": int(treated),
                      "baseline_sbp": round(baseline, 1), "sbp_change": round(change, 2)})
    return table


def write(handle: TextIO, site: str, seed: int, rows: int) -> None:
    writer = csv.DictWriter(handle, fieldnames=list(cohort(site, seed, 1)[0]))
    writer.writeheader()
    writer.writerows(cohort(site, seed, rows))


def main() -> None:
    if len(sys.argv) == 4:
        write(sys.stdout, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) != 1:
        sys.exit(f"usage: {sys.argv[0]} [SITE SEED ROWS]")
    folder = Path(__file__).resolve().parent / "cohorts"
    folder.mkdir(exist_ok=True)
    for site, seed in JOB_COHORTS.items():
        path = folder / f"{site}.csv"
        with open(path, "w", newline="") as handle:
            write(handle, site, seed, JOB_ROWS)
        print(f"wrote {path} ({JOB_ROWS:,} patients of {site})")


if __name__ == "__main__":
    main()
