"""PUT and GET of 64 MiB blocks through one keepstore (directory volume) over loopback HTTP,
beside the in-process md5 of the same bytes: the physical limit of one core.

Judged by:  PUT rate / md5 rate  and  GET rate / md5 rate   (target: both >= 0.7)

The keepstore runs as its own process, exactly as deployed. Each round measures md5, PUT and
GET of a fresh block back to back, so machine noise hits all three alike; medians are reported.
PUT is timed from a known locator (the client has hashed the block already, as when resuming);
GET includes the client's own md5 verification of every byte. For context the script also
prints the disk's write+fsync rate, which bounds PUT when the disk is slower than md5, and the CPU
time each side spent per block (md5's own is the floor): on a shared machine the rates swing with
the load, the CPU per block much less.

With --compiled (a C compiler and OpenSSL's headers on the machine) each round also PUTs the block
to benchmarks/compiled/put_server.c, the same work in C (receive, md5 and O_DIRECT write in three
threads, fsync, rename), through the same client: what a compiled keepstore would reach here.

    .venv/bin/python benchmarks/keep_throughput.py [--rounds 6] [--compiled] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _cpu import cpu_seconds
from archipelago.config import parse_config
from archipelago.keep.client import KeepClient
from archipelago.run.ports import free_port
from archipelago.run.processes import KeepstoreProcess

BLOCK = 64 << 20
MIB = 1 << 20


def timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def with_cpu(pid: int, fn, *args):
    """(wall seconds, result, keepstore CPU seconds, this process's CPU seconds) of fn(*args)."""
    server, client = cpu_seconds(pid), cpu_seconds()
    seconds, result = timed(fn, *args)
    return seconds, result, cpu_seconds(pid) - server, cpu_seconds() - client


def compiled_server(work: Path, stack: ExitStack) -> tuple[str, int] | None:
    """(URL, pid) of benchmarks/compiled/put_server.c built and started here; None if it cannot be built."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    source = Path(__file__).parent / "compiled" / "put_server.c"
    if compiler is None:
        print("(--compiled: no C compiler on this machine)")
        return None
    binary = work / "put_server"
    built = subprocess.run([compiler, "-O2", "-o", str(binary), str(source), "-lcrypto", "-lpthread"],
                           capture_output=True, text=True)
    if built.returncode != 0:
        print(f"(--compiled: the build failed: {built.stderr.strip().splitlines()[-1:]})")
        return None
    (work / "cvol").mkdir()
    port = free_port()
    process = subprocess.Popen([str(binary), str(port), str(work / "cvol")], stdout=subprocess.DEVNULL)
    stack.callback(process.wait)
    stack.callback(process.terminate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # it answers PUTs only: a connection accepted is the sign
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"http://127.0.0.1:{port}", process.pid
        except OSError:
            time.sleep(0.05)
    print("(--compiled: the C server did not start)")
    return None


def disk_write_seconds(directory: Path, data: bytes) -> float:
    path = directory / "disk-probe"
    start = time.perf_counter()
    with open(path, "wb", buffering=0) as handle:
        handle.write(data)
        os.fsync(handle.fileno())
    elapsed = time.perf_counter() - start
    path.unlink()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--compiled", action="store_true", help="also PUT to the same work written in C")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="keep-bench-", dir=os.environ.get("BENCH_DIR")) as scratch:
        work = Path(scratch)
        config = parse_config({"cluster_id": "zbenc", "volumes": [{"driver": "directory", "root": str(work / "vol")}]})
        # a keepstore on its own stores blocks for tokens its cluster's API accepts; there is no API
        # here, so its root token (validated in memory, as a cached user's token is after one round trip)
        token = config.system_root_token
        rates: dict[str, list[float]] = {"md5": [], "put": [], "get": [], "disk": []}
        cpu: dict[str, list[float]] = {"md5": [], "put_server": [], "put_client": [], "get_server": [],
                                       "get_client": [], "put_c_server": []}
        with KeepstoreProcess(config, work) as keepstore, ExitStack() as stack:
            pid = keepstore.process.pid
            compiled = compiled_server(work, stack) if args.compiled else None
            c_client = KeepClient.from_urls([compiled[0]], token, cache=None) if compiled else None
            client = KeepClient.from_urls([keepstore.url], token, cache=None)
            client.put(os.urandom(1024))  # warm up the connection
            buffer = bytearray(BLOCK)  # reused, as a downloader streaming blocks to disk does
            for _ in range(args.rounds):
                data = os.urandom(BLOCK)
                seconds, md5, _, own = with_cpu(pid, lambda d: hashlib.md5(d).hexdigest(), data)
                rates["md5"].append(BLOCK / MIB / seconds)
                cpu["md5"].append(own)
                seconds, locator, server, own = with_cpu(pid, client.put, data, 1, md5)
                rates["put"].append(BLOCK / MIB / seconds)
                cpu["put_server"].append(server)
                cpu["put_client"].append(own)
                if compiled and c_client:
                    seconds, _, server, _ = with_cpu(compiled[1], c_client.put, data, 1, md5)
                    rates.setdefault("put_c", []).append(BLOCK / MIB / seconds)
                    cpu["put_c_server"].append(server)
                seconds, back, server, own = with_cpu(pid, client.get_into, locator, buffer)
                assert back == data, "GET returned different bytes"
                rates["get"].append(BLOCK / MIB / seconds)
                cpu["get_server"].append(server)
                cpu["get_client"].append(own)
                rates["disk"].append(BLOCK / MIB / disk_write_seconds(work, data))
                del data, back
    median = {name: statistics.median(values) for name, values in rates.items()}
    cpu_ms = {name: round(statistics.median(values) * 1000) for name, values in cpu.items() if values}
    result = {
        "block_mib": BLOCK // MIB,
        "rounds": args.rounds,
        "mib_per_s": {k: round(v, 1) for k, v in median.items()},
        "put_over_md5": round(median["put"] / median["md5"], 3),
        "get_over_md5": round(median["get"] / median["md5"], 3),
        "put_over_disk": round(median["put"] / median["disk"], 3),
        "cpu_ms_per_block": cpu_ms,
        "target": 0.7,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"keepstore throughput, {args.rounds} rounds of one 64 MiB block each (medians)")
    print(f"  md5 in process      {median['md5']:8.1f} MiB/s   (the single-core limit)")
    print(f"  disk write+fsync    {median['disk']:8.1f} MiB/s   (context: bounds PUT on a slow disk)")
    print(f"  PUT over HTTP       {median['put']:8.1f} MiB/s")
    print(f"  GET over HTTP       {median['get']:8.1f} MiB/s   (client verifies md5)")
    if "put_c" in median:
        result["put_c_over_md5"] = round(median["put_c"] / median["md5"], 3)
        print(f"  PUT to the C server {median['put_c']:8.1f} MiB/s   (the same work compiled; its CPU per block "
              f"{cpu_ms['put_c_server']} ms)   PUT C / md5 = {result['put_c_over_md5']:.2f}")
    print(f"  CPU per block: md5 {cpu_ms['md5']} ms; PUT keepstore {cpu_ms['put_server']} + client "
          f"{cpu_ms['put_client']} ms; GET keepstore {cpu_ms['get_server']} + client {cpu_ms['get_client']} ms")
    print(f"  PUT / md5 = {result['put_over_md5']:.2f}    GET / md5 = {result['get_over_md5']:.2f}    "
          f"(target >= 0.7)    PUT / disk = {result['put_over_disk']:.2f}")


if __name__ == "__main__":
    main()
