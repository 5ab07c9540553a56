"""Upload and download of ~1 GiB (many small files plus a few large ones): `archi put/get` beside the
official `arv-put/arv-get`, against the same cluster, in the same run.

Judged by:  our MB/s / Arvados tools' MB/s, for upload and for download   (target: >= 1.5)

The cluster (API server + keepstore, one process, directory volume) runs on loopback. Each round
runs both tools in alternating order, so neither always gets the warmer machine; medians are
reported. Wall-clock time of the whole command, start-up included, as a user sees it. Both tools
download the same collection (written by arv-put) to fresh directories.

    .venv/bin/python benchmarks/transfer.py [--gib 1.0] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess

BIN = Path(sys.executable).parent


def make_dataset(root: Path, total_bytes: int) -> int:
    """80% of the bytes in three large files, 20% in 64 KiB files, across 20 directories."""
    large = int(total_bytes * 0.8) // 3
    for n in range(3):
        with open(root / f"large-{n}.bin", "wb") as handle:
            for _ in range(large // (8 << 20)):
                handle.write(os.urandom(8 << 20))
    small_count = int(total_bytes * 0.2) // (64 << 10)
    for n in range(small_count):
        folder = root / f"dir-{n % 20:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"small-{n:05d}.dat").write_bytes(os.urandom(64 << 10))
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    arv_put, arv_get = shutil.which("arv-put", path=str(BIN)), shutil.which("arv-get", path=str(BIN))
    if not (arv_put and arv_get):
        raise SystemExit("arv-put/arv-get not found: pip install arvados-python-client (make test installs it)")
    archi = [sys.executable, "-m", "archipelago"]
    times: dict[str, list[float]] = {"archi put": [], "arv-put": [], "archi get": [], "arv-get": []}
    with tempfile.TemporaryDirectory(prefix="transfer-bench-", dir=os.environ.get("BENCH_DIR")) as scratch:
        work = Path(scratch)
        (work / "data").mkdir()
        size = make_dataset(work / "data", int(args.gib * (1 << 30)))
        init_cluster(work / "cluster", "zbenc")
        with ClusterProcess(work / "cluster") as cluster:
            env = {**os.environ, "HOME": str(work), "ARVADOS_API_HOST": cluster.api_url.removeprefix("https://"),
                   "ARVADOS_API_TOKEN": cluster.admin_token or "", "ARVADOS_API_HOST_INSECURE": "1",
                   "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": cluster.admin_token or "",
                   "ARCHI_API_HOST_INSECURE": "1"}
            puts = {
                "archi put": lambda: timed([*archi, "put", str(work / "data"), "--json"], env),
                "arv-put": lambda: timed([arv_put, "--no-resume", "--no-cache", str(work / "data")], env),
            }
            uuid = ""
            for round_ in range(args.rounds):
                for name in (list(puts) if round_ % 2 == 0 else list(reversed(puts))):
                    seconds, out = puts[name]()
                    times[name].append(seconds)
                    if name == "arv-put":
                        uuid = out.strip()
            gets = {
                "archi get": lambda dest: timed([*archi, "get", uuid, str(dest), "--json"], env),
                "arv-get": lambda dest: timed([arv_get, "-r", f"{uuid}/", str(dest) + "/"], env),
            }
            for round_ in range(args.rounds):
                for name in (list(gets) if round_ % 2 == 0 else list(reversed(gets))):
                    dest = work / f"out-{name.replace(' ', '-')}-{round_}"
                    dest.mkdir()
                    seconds, _ = gets[name](dest)
                    times[name].append(seconds)
                    shutil.rmtree(dest)
    median = {name: statistics.median(values) for name, values in times.items()}
    rate = {name: size / 1e6 / seconds for name, seconds in median.items()}
    result = {
        "bytes": size, "rounds": args.rounds, "seconds": {k: round(v, 2) for k, v in median.items()},
        "mb_per_s": {k: round(v, 1) for k, v in rate.items()},
        "upload_ratio": round(rate["archi put"] / rate["arv-put"], 2),
        "download_ratio": round(rate["archi get"] / rate["arv-get"], 2),
        "target": 1.5,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"transfer of {size / 1e6:.0f} MB ({args.rounds} rounds, medians, wall clock incl. start-up)")
    for name in times:
        print(f"  {name:10} {median[name]:7.2f} s  {rate[name]:8.1f} MB/s")
    print(f"  upload ratio archi/arv = {result['upload_ratio']:.2f}   download ratio = {result['download_ratio']:.2f}"
          f"   (target >= 1.5)")


if __name__ == "__main__":
    main()
