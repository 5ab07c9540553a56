"""Data in S3 used in place through a gateway, beside reading it directly, in one run.

Judged by:  boto3 direct read time / gateway read time      (target >= 0.8: the gateway at 80 % of boto3's rate)
            warm gateway read time / native Keep read time  (target <= 1.1)
            `archi register` time / one streaming md5 pass  (target <= 1.2)

A real S3-compatible server (moto in server mode) holds --mib of objects (64 MiB each, the last
one shorter); a cluster has an S3 gateway over the bucket. In one run: the objects are registered
(each read once, streaming, md5 per 64 MiB block), beside one plain streaming md5 pass with boto3;
the collection is read through the gateway cold (every block fetched from S3 and md5-checked by
the gateway, then by the client), beside boto3 reading the same objects; read again warm (the
gateway's cache), beside the same bytes read from the cluster's own Keep. Reads stream every block
through the keep client, md5-verified, as `archi get` does, without writing files.

    .venv/bin/python benchmarks/gateway.py [--mib 1024] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import boto3

from _cpu import cpu_seconds
from archipelago.config import GatewayConfig, dump_config, load_config
from archipelago.formats.manifest import parse
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.ports import free_port, wait_for_http
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from archipelago.sdk.gateway import register

BUCKET, BLOCK = "bench", 64 << 20
GATEWAY = "z1111-bi6l4-gateway00000000"


def read_collection(client: ApiClient, uuid: str) -> None:
    record = client.collections.get(uuid)
    locators = [loc for stream in parse(record["manifest_text"]).streams for loc in stream.locators]
    for _ in client.keep(cache=None).stream_blocks(locators):
        pass


def measure(work: Callable[[], object], processes: dict[str, int]) -> dict:
    """Wall time of `work`, and the CPU time each process spent meanwhile: where the time goes."""
    before = {name: cpu_seconds(pid) for name, pid in processes.items()} | {"client": cpu_seconds()}
    started = time.perf_counter()
    work()
    seconds = time.perf_counter() - started
    after = {name: cpu_seconds(pid) for name, pid in processes.items()} | {"client": cpu_seconds()}
    return {"seconds": round(seconds, 3), "cpu": {name: round(after[name] - before[name], 2) for name in before}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="how much data (the gateway caches all of it)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    moto = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if moto is None:
        raise SystemExit("moto_server is not installed (pip install 'moto[server]')")
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as scratch_dir:
        scratch = Path(scratch_dir)
        port = free_port()
        server = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(endpoint, process=server)
            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench")
            s3.create_bucket(Bucket=BUCKET)
            keys: list[str] = []
            remaining = args.mib << 20
            while remaining > 0:
                size = min(BLOCK, remaining)
                keys.append(f"data/part-{len(keys):03d}")
                s3.put_object(Bucket=BUCKET, Key=keys[-1], Body=os.urandom(size))
                remaining -= size
            init_cluster(scratch / "cluster", "z1111")
            config = load_config(scratch / "cluster" / CONFIG_NAME)
            config.gateways = [GatewayConfig(driver="s3", bucket=BUCKET, endpoint=endpoint, access_key="bench",
                                             secret_key="bench", listen=f"127.0.0.1:{free_port()}",
                                             cache_mib=args.mib + 64)]
            (scratch / "cluster" / CONFIG_NAME).write_text(dump_config(config))
            with ClusterProcess(scratch / "cluster") as cluster:
                client = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
                processes = {"s3": server.pid, "cluster": cluster.process.pid}

                def md5_pass() -> None:
                    for key in keys:
                        body = s3.get_object(Bucket=BUCKET, Key=key)["Body"]
                        while chunk := body.read(BLOCK):
                            hashlib.md5(chunk).hexdigest()

                def boto3_read() -> None:
                    for key in keys:
                        s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()

                records: dict[str, dict] = {}
                phases = {
                    "register": measure(lambda: records.update(gw=register(client, "data", GATEWAY, "bench")),
                                        processes),
                    "md5_pass": measure(md5_pass, processes),
                    "gateway_cold": measure(lambda: read_collection(client, records["gw"]["uuid"]), processes),
                    "boto3": measure(boto3_read, processes),
                    "gateway_warm": measure(lambda: read_collection(client, records["gw"]["uuid"]), processes),
                }
                native = Collection(client)
                for key in keys:
                    native.write(key, s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
                records["keep"] = native.save_new("native copy")
                phases["keep"] = measure(lambda: read_collection(client, records["keep"]["uuid"]), processes)
        finally:
            server.terminate()
            server.wait(10)
    t = {name: phase["seconds"] for name, phase in phases.items()}
    result = {"mib": args.mib, "phases": phases,
              "cold_rate_vs_boto3": round(t["boto3"] / t["gateway_cold"], 2),
              "warm_vs_keep": round(t["gateway_warm"] / t["keep"], 2),
              "register_vs_md5": round(t["register"] / t["md5_pass"], 2),
              "cold_rate_vs_boto3_md5": round(t["md5_pass"] / t["gateway_cold"], 2)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.mib} MiB in S3 (moto): register {t['register']:.2f} s vs one md5 pass {t['md5_pass']:.2f} s; "
          f"through the gateway cold {t['gateway_cold']:.2f} s vs boto3 {t['boto3']:.2f} s; "
          f"warm {t['gateway_warm']:.2f} s vs Keep {t['keep']:.2f} s")
    print("CPU seconds by process (S3 server / cluster with its gateway / this client):")
    for name, phase in phases.items():
        cpu = phase["cpu"]
        print(f"  {name:13} {phase['seconds']:6.2f} s wall   {cpu['s3']:5.2f} / {cpu['cluster']:5.2f} / "
              f"{cpu['client']:5.2f}   ({sum(cpu.values()) / phase['seconds']:.1f} cores busy of {os.cpu_count()})")
    print(f"cold rate vs boto3 {result['cold_rate_vs_boto3']:.2f} (target >= 0.8)   "
          f"warm vs Keep {result['warm_vs_keep']:.2f}x (target <= 1.1)   "
          f"register vs md5 {result['register_vs_md5']:.2f}x (target <= 1.2)")
    print(f"(for reference, not judged: cold rate vs boto3 reading and md5-checking each block "
          f"{result['cold_rate_vs_boto3_md5']:.2f})")


if __name__ == "__main__":
    main()
