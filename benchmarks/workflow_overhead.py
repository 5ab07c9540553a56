"""The meta-analysis of examples/meta-analysis on three clusters (archi run: extract next to each
cohort, merge at home) beside the same workflow run by plain cwltool on local copies of the same
files, in the same run.

Judged by:  archi run wall time / cwltool wall time   (target: <= 2x)
and:        the plan of the same workflow over a 1,000-record scatter on the 3 clusters   (target: < 0.5 s)

Both run the same scripts on the same cohorts (generated identically); cwltool runs them as local
processes with no container, archi run as containers on the clusters' local dispatchers (bubblewrap).
Wall time of the workflow alone (the clusters are up and the cohorts in place before the clock
starts), median of --rounds runs after --warmup untimed ones (a user's first visit to a cluster is
paid once, not per workflow); reuse is off so every step runs each time.

The plan is timed as `Runner.plan` makes it (what `archi run --plan` and the start of every run
do): every record placed, each cluster asked about the 1,000 cohorts it may hold (in batches, at
once), every refusal checked; the workflow's loading and the job order's reading beside it.

    .venv/bin/python benchmarks/workflow_overhead.py [--rounds 3] [--warmup 1] [--records 1000] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from archipelago.cwl.runner import Runner
from archipelago.run.demo_meta import EXAMPLE, MIN_AGE, _analyst, _generate
from archipelago.run.federation import init_federation
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (the analyst's first visit "
                        "to each cluster creates their record there and has their token validated)")
    parser.add_argument("--records", type=int, default=1000, help="records of the scatter whose plan is timed")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as scratch_dir, contextlib.ExitStack() as stack:
        scratch = Path(scratch_dir)
        members = init_federation(scratch / "fed", 3)
        for member in members:
            stack.enter_context(ClusterProcess(member.directory))
        admins = {m.cluster_id: ApiClient(m.api_url, m.admin_token, insecure=True) for m in members}
        analyst = _analyst(admins["z1111"])
        analyst_uuid = analyst.users.current()["uuid"]
        remote, local = [], []
        for n, (cid, admin) in enumerate(admins.items(), start=1):
            data = _generate(f"site-{cid}", n)
            (scratch / f"{cid}.csv").write_bytes(data)
            local.append({"class": "File", "path": str(scratch / f"{cid}.csv")})
            cohort = Collection(admin)
            cohort.write("cohort.csv", data)
            record = cohort.save_new(f"cohort {cid}")
            admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": analyst_uuid,
                                "head_uuid": record["uuid"]})
            remote.append({"class": "File", "location": f"keep:{record['portable_data_hash']}/cohort.csv"})
        scripts = {"extract_script": {"class": "File", "path": str(EXAMPLE / "extract.py")},
                   "merge_script": {"class": "File", "path": str(EXAMPLE / "merge.py")}}
        common = {"clusters": list(admins), "min_age": MIN_AGE, **scripts}
        (scratch / "remote.json").write_text(json.dumps({"cohorts": remote, **common}))
        (scratch / "local.json").write_text(json.dumps({"cohorts": local, **common}))
        ours, theirs = [], []
        # the steps' python3 is this environment's, as on the clusters (host_path): merge.py plots with matplotlib
        local_env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
        for round_ in range(-args.warmup, args.rounds):  # rounds below 0 warm up and are not counted
            started, last_started_at = time.perf_counter(), time.time()
            runner = Runner(analyst, reuse=False)
            _, status = runner.run(EXAMPLE / "meta-analysis.cwl", scratch / "remote.json")
            if round_ >= 0:
                ours.append(time.perf_counter() - started)
            if status != "success":
                raise SystemExit(f"archi run failed in round {round_}: {runner.failures}")
            outdir = scratch / f"cwltool-{round_}"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "cwltool", "--quiet", "--no-container", "--outdir", str(outdir),
                            str(EXAMPLE / "meta-analysis.cwl"), str(scratch / "local.json")],
                           check=True, capture_output=True, env=local_env)
            if round_ >= 0:
                theirs.append(time.perf_counter() - started)
        timeline = _timeline(admins, last_started_at)
        planning = _plan_many(admins, analyst, scratch, args.records, common)
    result = {"last_round_timeline": timeline, "plan": planning,
              "archi_run_each": [round(t, 2) for t in ours], "cwltool_each": [round(t, 2) for t in theirs],
              "archi_run_seconds": round(statistics.median(ours), 2),
              "cwltool_seconds": round(statistics.median(theirs), 2),
              "ratio": round(statistics.median(ours) / statistics.median(theirs), 2), "rounds": args.rounds}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"meta-analysis, 3 cohorts on 3 clusters: archi run {result['archi_run_seconds']:.2f} s; "
          f"cwltool on local copies {result['cwltool_seconds']:.2f} s (medians of {args.rounds})")
    print(f"ratio {result['ratio']:.2f}x   (target <= 2x)")
    print(f"the last archi run, seconds from its start ({ours[-1]:.2f} s in all):")
    for step in timeline:
        print(f"  {step['step']:12} on {step['cluster']}: submitted {step['submitted']:5.2f}  "
              f"running {step['running']:5.2f}  finished {step['finished']:5.2f}")
    print(f"plan of a {planning['records']:,}-record scatter over 3 clusters: {planning['plan_seconds']:.2f} s "
          f"(median of {len(planning['plan_each'])}; target < 0.5 s); loading the workflow and reading the job "
          f"order beside it: {planning['load_seconds']:.2f} s; {planning['placed']}")


def _plan_many(admins: dict[str, ApiClient], analyst: ApiClient, scratch: Path, records: int,
               common: dict[str, Any]) -> dict[str, Any]:
    """The plan of the meta-analysis over `records` cohorts spread over the clusters, each in a
    project that stays on its cluster and is shared with the analyst (nothing runs: no block is read,
    so the cohorts are manifests of blocks that need not exist, made by each cluster's admin)."""
    me = analyst.users.current()["uuid"]
    clusters = list(admins)
    projects = {}
    for cluster, admin in admins.items():
        projects[cluster] = admin.groups.create({"name": "many cohorts", "group_class": "project",
                                                 "residency": "cluster"}, ensure_unique_name=True)["uuid"]
        admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": me,
                            "head_uuid": projects[cluster]})

    def cohort(n: int) -> dict[str, Any]:
        cluster = clusters[n % len(clusters)]
        locator = f"{hashlib.md5(f'cohort {n}'.encode()).hexdigest()}+{1000 + n}"
        record = admins[cluster].collections.create({"name": f"cohort {n}", "owner_uuid": projects[cluster],
                                                     "manifest_text": f". {locator} 0:{1000 + n}:cohort.csv\n"})
        return {"class": "File", "location": f"keep:{record['portable_data_hash']}/cohort.csv"}

    with ThreadPoolExecutor(8) as pool:
        cohorts = list(pool.map(cohort, range(records)))
    job = scratch / "many.json"
    job.write_text(json.dumps({**common, "cohorts": cohorts,
                               "clusters": [clusters[n % len(clusters)] for n in range(records)]}))
    plans, loads = [], []
    for _ in range(3):
        runner = Runner(analyst)  # a fresh one each time: nothing known of the clusters beforehand
        started = time.perf_counter()
        plan = runner.plan(EXAMPLE / "meta-analysis.cwl", job)
        loads.append(time.perf_counter() - started - plan.seconds)
        plans.append(plan.seconds)
        if plan.refusals():
            raise SystemExit(f"the plan refused the run: {plan.refusals()[:3]}")
    placed: dict[str, int] = {}
    for item in plan.items.values():
        placed[str(item.cluster)] = placed.get(str(item.cluster), 0) + 1
    return {"records": records, "plan_each": [round(p, 3) for p in plans],
            "plan_seconds": round(statistics.median(plans), 3),
            "load_seconds": round(statistics.median(loads), 3),
            "placed": ", ".join(f"{n} on {c}" for c, n in sorted(placed.items()))}


def _timeline(admins: dict[str, ApiClient], since: float) -> list[dict]:
    """When each step of the run that began at `since` was submitted, began running and finished,
    from its container request and container on the cluster it ran on."""
    def offset(stamp: str | None) -> float:
        return round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - since, 2) if stamp else -1.0

    steps = []
    for cluster, admin in admins.items():
        for request in admin.container_requests.list(order=["created_at desc"], limit=20)["items"]:
            if offset(request["created_at"]) < 0 or not request.get("container_uuid"):
                continue
            container = admin.containers.get(request["container_uuid"])
            steps.append({"step": request["name"], "cluster": cluster, "submitted": offset(request["created_at"]),
                          "running": offset(container.get("started_at")),
                          "finished": offset(container.get("finished_at"))})
    return sorted(steps, key=lambda step: step["submitted"])


if __name__ == "__main__":
    main()
