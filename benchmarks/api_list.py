"""Collection list latency with filters, 100k collections, 16 concurrent clients, SQLite and PostgreSQL.

Judged by:  p99 latency of the list requests   (target: < 50 ms)

For each database a cluster is initialised, 100k collections are inserted straight into its
database (owned by one ordinary user, spread over 10 projects, with properties), then the
cluster is started and 16 concurrent clients (one asyncio task each, aiohttp over HTTPS) issue
a mix of filtered list requests as that user for a fixed number of requests. Latency is measured
per request, client-side; p50/p95/p99 are printed.

    .venv/bin/python benchmarks/api_list.py [--collections 100000] [--requests 1600] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from archipelago.config import dump_config, load_config
from archipelago.db.models import Collection, Group, PropertyIndex, User, property_rows
from archipelago.ids import INFIX, new_uuid
from archipelago.run.cluster import CONFIG_NAME, backend_for, init_cluster
from archipelago.run.processes import ClusterProcess, PostgresServer

EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"


def populate(directory: Path, count: int) -> tuple[str, list[str]]:
    """Insert `count` collections for a fresh user; returns the user's token and project UUIDs."""
    from archipelago.run.cluster import load_cluster

    config, _ = load_cluster(directory)
    backend = backend_for(config)
    stamp = datetime.now(UTC)
    user = new_uuid(config.cluster_id, INFIX["User"])
    projects = [new_uuid(config.cluster_id, INFIX["Group"]) for _ in range(10)]
    with backend.sessions() as session, session.begin():
        session.add(User(uuid=user, owner_uuid=config.system_user_uuid, created_at=stamp, modified_at=stamp,
                         email="bench@example.org", username="bench", is_admin=False, is_active=True, prefs={}))
        for n, uuid in enumerate(projects):
            session.add(Group(uuid=uuid, owner_uuid=user, created_at=stamp, modified_at=stamp, name=f"project-{n}",
                              group_class="project", properties={}, is_trashed=False))
    rows = []
    for n in range(count):
        rows.append({
            "uuid": new_uuid(config.cluster_id, INFIX["Collection"]), "owner_uuid": projects[n % 10],
            "created_at": stamp, "modified_at": stamp, "name": f"run-{n:06d}",
            "properties": {"sample": f"s{n % 1000}", "batch": n // 1000}, "portable_data_hash": f"{n:032x}+0",
            "manifest_text": "", "file_count": 0, "file_size_total": 0, "is_trashed": False, "version": 1,
            "storage_classes_desired": ["default"],
        })
    index_rows = [r for row in rows for r in property_rows(row["uuid"], row["properties"])]
    with backend.sessions() as session, session.begin():
        for start in range(0, len(rows), 5000):
            session.execute(Collection.__table__.insert(), rows[start : start + 5000])
        for start in range(0, len(index_rows), 10000):  # what the API maintains on every write
            session.execute(PropertyIndex.__table__.insert(), index_rows[start : start + 10000])
    return backend.create_token(user), projects


def queries(projects: list[str], rng: random.Random) -> list[dict[str, str]]:
    def q(filters: list, **extra: str) -> dict[str, str]:
        return {"filters": json.dumps(filters), "limit": "100", **extra}

    return [
        q([["owner_uuid", "=", rng.choice(projects)]], order=json.dumps(["name asc"])),
        q([["name", "=", f"run-{rng.randrange(100000):06d}"]]),
        q([["name", "like", f"run-{rng.randrange(1000):03d}%"]]),
        q([["properties.sample", "=", f"s{rng.randrange(1000)}"]]),
        q([["portable_data_hash", "=", f"{rng.randrange(100000):032x}+0"]]),
        q([["owner_uuid", "=", rng.choice(projects)], ["name", ">=", "run-050000"]], count="none"),
    ]


async def load(url: str, token: str, projects: list[str], requests: int, clients: int) -> list[float]:
    latencies: list[float] = []
    rng = random.Random(42)
    headers = {"Authorization": f"Bearer {token}"}

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        for _ in range(n):
            params = rng.choice(queries(projects, rng))
            start = time.perf_counter()
            async with session.get(f"{url}/arvados/v1/collections", params=params, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise SystemExit(f"list failed: {resp.status} {body[:300]!r}")
            latencies.append(time.perf_counter() - start)

    connector = aiohttp.TCPConnector(ssl=False, limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await client(session, 20)  # warm-up, not measured
        latencies.clear()
        await asyncio.gather(*(client(session, requests // clients) for _ in range(clients)))
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_one(database: str, database_url: str, work: Path, count: int, requests: int, clients: int,
            workers: int) -> dict:
    directory = work / database
    init_cluster(directory, "zbenc", database_url)
    path = directory / CONFIG_NAME
    config = load_config(path)
    config.api.workers = workers
    path.write_text(dump_config(config))
    started = time.perf_counter()
    token, projects = populate(directory, count)
    populated = time.perf_counter() - started
    with ClusterProcess(directory) as cluster:
        time.sleep(2 + workers)  # the extra API processes load while the first one serves
        latencies = asyncio.run(load(cluster.api_url, token, projects, requests, clients))
    ms = [x * 1000 for x in latencies]
    return {"database": database, "collections": count, "requests": len(ms), "clients": clients, "workers": workers,
            "populate_s": round(populated, 1), "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1), "p99_ms": round(percentile(ms, 99), 1),
            "mean_ms": round(statistics.mean(ms), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=1600)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="API processes (api.workers)")
    parser.add_argument("--postgres-url", help="an empty PostgreSQL database (default: start a throwaway server)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="api-bench-") as scratch:
        work = Path(scratch)
        rows.append(run_one("sqlite", "sqlite:///archipelago.db", work, args.collections, args.requests,
                            args.clients, args.workers))
        if args.postgres_url:
            rows.append(run_one("postgresql", args.postgres_url, work, args.collections, args.requests,
                                args.clients, args.workers))
        elif (reason := PostgresServer().available) is not None:
            print(f"PostgreSQL skipped: {reason}")
        else:
            with PostgresServer() as server:
                rows.append(run_one("postgresql", server.create_database("bench"), work, args.collections,
                                    args.requests, args.clients, args.workers))
    if args.json:
        print(json.dumps({"rows": rows, "target_p99_ms": 50}, indent=2))
        return
    for r in rows:
        print(f"{r['database']:>10}: {r['collections']:,} collections, {r['requests']} list requests from "
              f"{r['clients']} clients, {r['workers']} API processes: p50 {r['p50_ms']} ms  "
              f"p95 {r['p95_ms']} ms  p99 {r['p99_ms']} ms  (target p99 < 50 ms)")


if __name__ == "__main__":
    main()
