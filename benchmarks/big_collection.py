"""A collection of 1,000,000 files: `archi ls` of one directory and reading one small file end to
end (API, manifest part, block, bytes), ours beside the official Arvados Python SDK, one run.

Judged by:  ours, wall clock of the whole `archi` command (interpreter start-up included)  < 1 s each
            (printed beside the Arvados SDK's time for the same and the ratio; the command's CPU time,
            user + system, is printed too: on a shared machine the wall clock is mostly waiting for a core)

A cluster on loopback; a user stores one real 64 MiB block of random bytes, then creates (through the
API, as any client would) a collection whose manifest names that block in 100 directories of 10,000
small files each (1000-1999 bytes, at different offsets of the block): a 30 MB manifest of a million
files without writing a million blocks. Then, repeated --rounds times: `archi ls UUID/dir_042
--json` and `archi get UUID/dir_042/file_0004242.dat DEST --json` as child processes, and the same
two in this process through the SDK (sdk/files.py: the API's collection files endpoint, then Keep).
The bytes read are checked against the block. The Arvados SDK (in a child process) lists the same
directory with `CollectionReader(uuid).find(dir).items()` and reads the same file with
`CollectionReader(uuid).open(path).read()`, once each (a minute each at a million files).

    .venv/bin/python benchmarks/big_collection.py [--files 1000000] [--rounds 5] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from archipelago.formats.manifest import parse
from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient
from archipelago.sdk.files import collection_files, subtree_manifest

HERE = Path(__file__).resolve().parent
DIRS = 100
BLOCK_BYTES = 64 << 20  # as Arvados writers pack small files: reading one fetches and checks the whole block
DIRECTORY, FILE_NUMBER = "dir_042", 4242
TARGET_SECONDS = 1.0


def file_spec(n: int) -> tuple[int, int]:
    """(offset in the block, size) of the n-th file of a directory."""
    size = 1000 + (n * 7919) % 1000
    return (n * 104_729) % (BLOCK_BYTES - 2000), size


def big_manifest(locator: str, files: int) -> str:
    per_dir = files // DIRS
    tokens = " ".join(f"{pos}:{size}:file_{n:07d}.dat" for n in range(per_dir) for pos, size in [file_spec(n)])
    return "".join(f"./dir_{d:03d} {locator} {tokens}\n" for d in range(DIRS))


def timed(command: list[str], env: dict[str, str], cpu: list[float] | None = None) -> tuple[float, str]:
    """Wall clock of a child process (and its CPU time, user + system, appended to `cpu`)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return seconds, done.stdout


def ours_in_process(api_url: str, token: str, uuid: str, path: str) -> tuple[float, int, float, bytes]:
    """Listing and one file's bytes through the SDK, each with a fresh client (TLS, keep discovery)."""
    start = time.perf_counter()
    listed = [i for i in collection_files(ApiClient(api_url, token, insecure=True), uuid, DIRECTORY, recursive=True)
              if i["type"] == "file"]
    ls_seconds = time.perf_counter() - start
    start = time.perf_counter()
    client = ApiClient(api_url, token, insecure=True)
    tree = parse(subtree_manifest(client, uuid, path)).tree()
    parent, _, name = f"./{path}".rpartition("/")
    keep = client.keep(cache=None)
    data = b"".join(bytes(memoryview(keep.get(loc))[off:off + n]) for loc, off, n in tree[parent][name])
    return ls_seconds, len(listed), time.perf_counter() - start, data


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-arvados", action="store_true", help="ours only (the SDK takes minutes)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    number = FILE_NUMBER % (args.files // DIRS)
    path = f"{DIRECTORY}/file_{number:07d}.dat"
    block = os.urandom(BLOCK_BYTES)
    offset, size = file_spec(number)
    expected = block[offset:offset + size]
    times: dict[str, list[float]] = {"archi ls": [], "archi get": [], "sdk ls": [], "sdk read": [],
                                     "archi ls cpu": [], "archi get cpu": []}
    with tempfile.TemporaryDirectory(prefix="bigcol-bench-", dir=os.environ.get("BENCH_DIR")) as scratch:
        work = Path(scratch)
        init_cluster(work / "cluster", "zbigc")
        with ClusterProcess(work / "cluster") as cluster:
            admin = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
            user = admin.users.create({"email": "big@example.org", "username": "big"})
            row = admin.api_client_authorizations.create({"owner_uuid": user["uuid"]})
            token = f"v2/{row['uuid']}/{row['api_token']}"
            client = ApiClient(cluster.api_url, token, insecure=True)
            locator = client.keep().put(block)
            manifest = big_manifest(locator, args.files)
            start = time.perf_counter()
            record = client.collections.create({"manifest_text": manifest, "name": "a million files"})
            create_seconds = time.perf_counter() - start
            uuid = record["uuid"]
            start = time.perf_counter()  # the index is built in the background on write: the first reader may wait
            first = sum(1 for _ in collection_files(client, uuid, DIRECTORY))
            first_seconds = time.perf_counter() - start
            env = {**os.environ, "HOME": str(work), "ARCHI_API_HOST": cluster.api_url, "ARCHI_API_TOKEN": token,
                   "ARCHI_API_HOST_INSECURE": "1", "ARVADOS_API_HOST": cluster.api_url.removeprefix("https://"),
                   "ARVADOS_API_TOKEN": token, "ARVADOS_API_HOST_INSECURE": "1"}
            archi = [sys.executable, "-m", "archipelago"]
            listed = 0
            for n in range(args.rounds):
                seconds, out = timed([*archi, "ls", f"{uuid}/{DIRECTORY}", "--json"], env, times["archi ls cpu"])
                times["archi ls"].append(seconds)
                listed = len(json.loads(out))
                dest = work / f"get-{n}"
                seconds, _ = timed([*archi, "get", f"{uuid}/{path}", str(dest), "--json"], env,
                                   times["archi get cpu"])
                times["archi get"].append(seconds)
                if (dest / path.rpartition("/")[2]).read_bytes() != expected:
                    raise SystemExit(f"archi get wrote the wrong bytes for {path}")
                ls_s, sdk_listed, read_s, data = ours_in_process(cluster.api_url, token, uuid, path)
                if data != expected or sdk_listed != listed:
                    raise SystemExit("the SDK read the wrong bytes or listed another number of files")
                times["sdk ls"].append(ls_s)
                times["sdk read"].append(read_s)
            arvados: dict[str, Any] | None = None
            if not args.no_arvados:
                _, out = timed([sys.executable, str(HERE / "_arvados_big_collection.py"), uuid, DIRECTORY, path], env)
                arvados = json.loads(out)
                if arvados["md5"] != hashlib.md5(expected).hexdigest() or arvados["listed"] != listed:
                    raise SystemExit(f"the Arvados SDK disagrees: {arvados}")
    ours_ls, ours_get = statistics.median(times["archi ls"]), statistics.median(times["archi get"])
    result = {
        "files": args.files, "directories": DIRS, "manifest_mb": round(len(manifest) / 1e6, 1),
        "create_seconds": round(create_seconds, 2), "first_listing_after_create_seconds": round(first_seconds, 2),
        "listed": listed, "file_bytes": size, "rounds": args.rounds,
        "seconds": {k: {"median": round(statistics.median(v), 3), "min": round(min(v), 3), "max": round(max(v), 3)}
                    for k, v in times.items()},
        "arvados_seconds": None if arvados is None else {k: round(arvados[k], 2) for k in ("ls", "read")},
        "target_seconds": TARGET_SECONDS, "met": ours_ls < TARGET_SECONDS and ours_get < TARGET_SECONDS,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"a collection of {args.files:,} files in {DIRS} directories, manifest {result['manifest_mb']} MB "
          f"(create {create_seconds:.1f} s; first listing after it {first_seconds:.2f} s, {first:,} entries)")
    print(f"{'':36}{'ours: median (min-max) of ' + str(args.rounds):34}Arvados SDK      SDK / ours")
    rows = ((f"archi ls DIR ({listed:,} files)", "archi ls", "ls"),
            (f"archi get DIR/FILE ({size} bytes)", "archi get", "read"))
    for label, key, theirs in rows:
        ratio = arvados[theirs] / statistics.median(times[key]) if arvados else 0
        arv = f"{arvados[theirs]:8.2f} s      {ratio:6.1f}x" if arvados else "-"
        print(f"  {label:34}{spread(times[key]):34}{arv}")
        print(f"  {'    its CPU time (user + system)':34}{spread(times[key + ' cpu'])}")
    print(f"  {'  the same in process (SDK)':34}ls {spread(times['sdk ls'])}   read {spread(times['sdk read'])}")
    print(f"  ours < {TARGET_SECONDS:.0f} s for each (whole command, interpreter start-up included): "
          f"{'met' if result['met'] else 'not met'}")


if __name__ == "__main__":
    main()
