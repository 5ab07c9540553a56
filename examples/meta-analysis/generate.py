"""Make one cohort of the example: a table of patients of one site, in a trial of a treatment
that lowers systolic blood pressure (the effect, the noise and the ages differ by site).

    python3 generate.py SITE SEED ROWS > cohort.csv
"""

from __future__ import annotations

import csv
import random
import sys


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


def main() -> None:
    site, seed, rows = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    writer = csv.DictWriter(sys.stdout, fieldnames=list(cohort(site, seed, 1)[0]))
    writer.writeheader()
    writer.writerows(cohort(site, seed, rows))


if __name__ == "__main__":
    main()
