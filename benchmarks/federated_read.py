"""Reading a collection held on another cluster, cold and warm, beside reading it locally.

Judged by:  cold remote read time / local read time  (target <= 1.5)
            warm remote read time / local read time  (target <= 1.1)

Two federated clusters on loopback (z1111, z2222). A ~1 GiB collection is written on z2222 by a
user of z1111 (through z2222, with her token salted for it). Then, in one run: the collection is
read at z2222 directly (local), read through z1111 the first time (cold: z1111's keepstore
fetches every block from z2222 with the salted token), and read through z1111 again (warm: from
z1111's block cache; the byte counters prove nothing crossed). Reads stream every block through
the keep client (md5-verified), as `archi get` does, without writing files. Beside the times it
prints the CPU seconds each process spent in each read (where the time goes).

    .venv/bin/python benchmarks/federated_read.py [--gib 1.0] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from _cpu import cpu_seconds
from archipelago.config import dump_config, load_config
from archipelago.formats.manifest import parse
from archipelago.formats.tokens import salt_token
from archipelago.keepstore.metrics import fetched_from_clusters
from archipelago.run.cluster import CONFIG_NAME
from archipelago.run.federation import init_federation
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection


def read_all(client: ApiClient, uuid: str) -> tuple[float, int]:
    start = time.perf_counter()
    record = client.collections.get(uuid)
    locators = [loc for stream in parse(record["manifest_text"]).streams for loc in stream.locators]
    total = sum(len(view) for view in client.keep(cache=None).stream_blocks(locators))
    return time.perf_counter() - start, total


def with_cpu(pids: list[int], fn, *args):
    """fn(*args), and the CPU seconds of each process in `pids` and of this one meanwhile."""
    before = [cpu_seconds(pid) for pid in pids] + [cpu_seconds()]
    result = fn(*args)
    return result, [round(cpu_seconds(pid) - b, 2) for pid, b in zip([*pids, None], before, strict=True)]


def fetched_bytes(keep_url: str) -> int:
    return sum(fetched_from_clusters(keep_url).values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    size = int(args.gib * (1 << 30))
    with tempfile.TemporaryDirectory(prefix="fedread-bench-", dir=os.environ.get("BENCH_DIR")) as scratch:
        members = init_federation(Path(scratch), 2)
        for member in members:  # room for the whole collection in the remote-block cache
            path = member.directory / CONFIG_NAME
            config = load_config(path)
            config.keepstore.remote_cache_bytes = size + (256 << 20)
            path.write_text(dump_config(config))
        processes = [ClusterProcess(m.directory).start() for m in members]
        try:
            home = ApiClient(members[0].api_url, members[0].admin_token, insecure=True)
            user = home.users.create({"email": "reader@example.org", "username": "reader"})
            row = home.api_client_authorizations.create({"owner_uuid": user["uuid"]})
            token = f"v2/{row['uuid']}/{row['api_token']}"
            at_home = ApiClient(members[0].api_url, token, insecure=True)
            at_remote = ApiClient(members[1].api_url, salt_token(token, "z2222"), insecure=True)
            collection = Collection(at_remote)
            for n in range(max(1, size // (256 << 20))):
                collection.write(f"part-{n}.bin", os.urandom(min(256 << 20, size)))
            uuid = collection.save_new("remote dataset")["uuid"]
            pids = [p.process.pid for p in processes if p.process is not None]
            (local_s, local_bytes), local_cpu = with_cpu(pids, read_all, at_remote, uuid)
            before = fetched_bytes(at_home.keep().services[0].url)
            (cold_s, cold_bytes), cold_cpu = with_cpu(pids, read_all, at_home, uuid)
            after_cold = fetched_bytes(at_home.keep().services[0].url)
            (warm_s, warm_bytes), warm_cpu = with_cpu(pids, read_all, at_home, uuid)
            after_warm = fetched_bytes(at_home.keep().services[0].url)
        finally:
            for process in processes:
                process.stop()
    assert local_bytes == cold_bytes == warm_bytes
    result = {
        "bytes": local_bytes, "seconds": {"local": round(local_s, 2), "cold": round(cold_s, 2),
                                          "warm": round(warm_s, 2)},
        "crossed_cold": after_cold - before, "crossed_warm": after_warm - after_cold,
        "cold_over_local": round(cold_s / local_s, 2), "warm_over_local": round(warm_s / local_s, 2),
        "targets": {"cold": 1.5, "warm": 1.1},
        "cpu_seconds": {"z1111_z2222_client": {"local": local_cpu, "cold": cold_cpu, "warm": warm_cpu}},
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    mb = local_bytes / 1e6
    print(f"federated read of {mb:.0f} MB held on z2222")
    print(f"  local at z2222        {local_s:6.2f} s  {mb / local_s:7.1f} MB/s")
    for name, seconds, crossed in (("cold", cold_s, result["crossed_cold"]), ("warm", warm_s, result["crossed_warm"])):
        print(f"  via z1111, {name}       {seconds:6.2f} s  {mb / seconds:7.1f} MB/s   crossed {crossed / 1e6:.0f} MB")
    print("  CPU seconds (z1111 / z2222 / this client): " + "   ".join(
        f"{name} {' / '.join(f'{c:.2f}' for c in cpu)}" for name, cpu in
        (("local", local_cpu), ("cold", cold_cpu), ("warm", warm_cpu))))
    print(f"  cold/local = {result['cold_over_local']:.2f} (target <= 1.5)   "
          f"warm/local = {result['warm_over_local']:.2f} (target <= 1.1)")


if __name__ == "__main__":
    main()
