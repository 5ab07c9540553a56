"""Per-container overhead: N trivial containers (`true`) through the local dispatcher beside the
same N commands run directly on this machine, in the same run.

Judged by:  (containers' wall time - direct wall time) / N, seconds of overhead per container
            (target: < 0.5 s here), and the ratio of the two wall times.

Both sides run at the same parallelism (the dispatcher's cores: one container per core). Each
container asks for a fresh run (use_existing: false), so reuse does not hide the cost. Also
reported: the latency of one container alone (submit -> Final, median of several), which is what a
user waiting on a single step feels, and where its time goes (from the container records).

    .venv/bin/python benchmarks/container_overhead.py [--count 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient

COMMAND = ["true"]


def submit(client: ApiClient, n: int) -> str:
    attrs = {"name": f"bench {n}", "command": COMMAND, "output_path": "/out", "cwd": "/out",
             "mounts": {"/out": {"kind": "tmp"}}, "runtime_constraints": {"ram": 64 << 20, "vcpus": 1},
             "priority": 500, "state": "Committed", "use_existing": False, "container_image": None}
    return str(client.container_requests.create(attrs)["uuid"])


def wait_all(client: ApiClient, uuids: list[str]) -> None:
    pending = set(uuids)
    while pending:
        items = client.container_requests.list([["uuid", "in", sorted(pending)]], limit=1000, select=["uuid", "state"])
        pending -= {i["uuid"] for i in items["items"] if i["state"] == "Final"}
        if pending:
            time.sleep(0.05)


def seconds(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    return (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))
            ).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--singles", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="bench-containers-") as scratch:
        init_cluster(Path(scratch) / "c", "z1111")
        with ClusterProcess(Path(scratch) / "c") as cluster:
            client = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
            # one alone, several times: submit -> Final
            singles, phases = [], []
            for n in range(args.singles):
                started = time.perf_counter()
                uuid = submit(client, n)
                wait_all(client, [uuid])
                singles.append(time.perf_counter() - started)
                request = client.container_requests.get(uuid)
                container = client.containers.get(request["container_uuid"])
                phases.append((seconds(request["created_at"], container["started_at"]),
                               seconds(container["started_at"], container["finished_at"])))
            # a batch through the dispatcher
            started = time.perf_counter()
            uuids = [submit(client, n) for n in range(args.count)]
            wait_all(client, uuids)
            batch = time.perf_counter() - started
    # the same commands, directly, at the same parallelism
    started = time.perf_counter()
    with ThreadPoolExecutor(cores) as pool:
        list(pool.map(lambda _: subprocess.run(COMMAND, check=True), range(args.count)))
    direct = time.perf_counter() - started
    overhead = (batch - direct) / args.count
    to_start = statistics.median(p[0] for p in phases if p[0] is not None)
    running = statistics.median(p[1] for p in phases if p[1] is not None)
    result = {
        "count": args.count, "parallelism": cores,
        "containers_seconds": round(batch, 3), "direct_seconds": round(direct, 3),
        "overhead_per_container_seconds": round(overhead, 3), "ratio": round(batch / direct, 1),
        "single_container_latency_seconds": round(statistics.median(singles), 3),
        "single_submit_to_start_seconds": round(to_start, 3), "single_start_to_finish_seconds": round(running, 3),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.count} containers through the local dispatcher: {batch:.2f} s; "
          f"the same commands directly: {direct:.3f} s (parallelism {cores})")
    print(f"overhead per container: {overhead:.3f} s   (target < 0.5 s)   ratio {batch / direct:.0f}x")
    print(f"one container alone, submit -> Final: median {statistics.median(singles):.2f} s "
          f"(queued -> running {to_start:.2f} s, running -> finished {running:.2f} s)")


if __name__ == "__main__":
    main()
