"""The resolver at federation scale, on loopback, in one run.

Judged by:  resolve p99 latency under 16 concurrent clients, 1,000,000 identifiers over 1,000 sites
            (target < 5 ms)
            a herd of 1,000 sites pushing in the same second: registrations lost (target 0) and the
            time until every site is live by its own push (target <= 30 s)
            the poller keeping 1,000 sites fresh at a 10 s interval: the oldest poll (target <= 11 s:
            the interval and its jitter) and the resolver's CPU (target <= 1 core)
            a PDH lookup (which sites hold it) with 1,000 sites / with 3 (target <= 1.0, within noise)

The resolver is the real process (`archi resolver --config`), its SQLite database bulk-loaded with
1,000,000 registrations (1,000 published identifiers and PDHs for each of 1,000 sites) before it
starts; measured once its index in memory is read. The 1,000 sites are simulated by one aiohttp
process answering each site's feed (what a poll reads); the herd is 1,000 pushers in this process,
each signing with its own key and backing off with jitter on 503. Clients are asyncio tasks (uvloop)
with one connection each, in turns with a constant server (the machine's floor); the two PDH
resolvers are pinned to one core and asked in turns.

    .venv/bin/python benchmarks/resolver.py [--sites 1000] [--per-site 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from _cpu import cpu_seconds
from archipelago.resolver.config import ResolverConfig, dump_resolver_config
from archipelago.resolver.pusher import Backoff
from archipelago.resolver.signing import sign
from archipelago.resolver.store import Store
from archipelago.run.ports import free_port, wait_for_http
from archipelago.run.resolver import ResolverProcess

HERD_IDS = 20  # new identifiers each site of the herd pushes
WARM_UP = 200  # PDH lookups asked of each resolver before they are timed


def site_ids(count: int) -> list[str]:
    return [f"s{n:04d}" for n in range(count)]


def pdh_of(site: int, n: int) -> str:
    return f"{site:08x}{n:024x}+{n + 1}"


def simulated_sites(port: int) -> None:
    """Every site's feed on one port (`/<site>/_resolver/feed`): nothing new, as a quiet site says."""
    from aiohttp import web

    async def feed(request: web.Request) -> web.Response:
        after = int(request.query.get("after", "0"))
        return web.json_response({"after": after, "to": after, "identifiers": {}, "contents": {}, "more": False})

    app = web.Application()
    app.router.add_get("/{site}/_resolver/feed", feed)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def constant_server(port: int) -> None:
    """The resolver's HTTP server answering every request with one fixed answer: what the machine, the
    load generator and HTTP alone cost at this moment, the floor under the resolver's latency."""
    from archipelago.resolver.http import HttpServer, Reply, Request

    body = orjson.dumps({"identifier": "doi:10.9999/x", "scheme": "doi", "holders": [{"site": "s0000"}]})

    class Constant:
        def __call__(self, request: Request) -> Reply:
            return Reply(200, body)

        def admit(self, request: Request) -> None:
            return None

    async def serve() -> None:
        await HttpServer(Constant(), 1 << 20).start("127.0.0.1", port)
        await asyncio.Event().wait()

    run_fast(serve())


def write_config(root: Path, sites: list[str], sim_port: int, interval: float, keys: dict[str, str] | None = None,
                 mode: str = "both", name: str = "resolver.yml") -> tuple[Path, dict[str, str]]:
    keys = keys or {s: secrets.token_hex(16) for s in sites}
    config = ResolverConfig.model_validate({
        "listen": f"127.0.0.1:{free_port()}", "database_url": f"sqlite:///{root / 'resolver.db'}",
        "poll_concurrency": 64, "max_concurrent_pushes": 32,
        "defaults": {"mode": mode, "live_window": 30, "stale_window": 120, "poll_interval": interval},
        "sites": {s: {"url": f"http://127.0.0.1:{sim_port}/{s}", "key": keys[s]} for s in sites}})
    path = root / name
    path.write_text(dump_resolver_config(config))
    return path, keys


def bulk_load(db: Path, sites: list[str], per_site: int) -> float:
    """Registrations and content rows straight into the resolver's schema (what pushes would leave)."""
    Store(f"sqlite:///{db}").engine.dispose()  # the schema
    started = time.perf_counter()
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    for index, site in enumerate(sites):
        rows = [(f"doi:10.9999/{site}-{n:05d}", site, f"{site[:5]}-4zz18-{n:015d}", "collection", "ds",
                 pdh_of(index, n), 1000 + n, None) for n in range(per_site)]
        connection.executemany("INSERT INTO resolver_registrations VALUES (?,?,?,?,?,?,?,?)", rows)
        connection.executemany("INSERT INTO resolver_contents VALUES (?,?,0)", [(r[5], site) for r in rows])
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return time.perf_counter() - started


async def read_answer(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """One HTTP/1.1 answer read by hand: its head (status line and headers) and its body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length")))
    return head, await reader.readexactly(length)


async def resolve_load(url: str, sites: list[str], per_site: int, clients: int, each: int) -> list[float]:
    latencies: list[float] = []
    rng = secrets.SystemRandom()

    host, port = url.split("://", 1)[1].split(":")

    async def client() -> None:
        """One keep-alive connection, HTTP/1.1 written and read by hand: a load generator sharing the
        machine's two cores with the resolver must cost as little as it can, or it measures itself."""
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(each):
            ident = f"doi:10.9999/{rng.choice(sites)}-{rng.randrange(per_site):05d}"
            started = time.perf_counter()
            writer.write(f"GET /resolver/v1/resolve?id={ident} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            head, body = await read_answer(reader)
            latencies.append(time.perf_counter() - started)
            assert head.startswith(b"HTTP/1.1 200") and orjson.loads(body)["holders"], body[:200]
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def herd(url: str, keys: dict[str, str]) -> dict[str, Any]:
    """Every site pushes its first contact and HERD_IDS new identifiers at the same instant."""
    acknowledged: dict[str, float] = {}
    retries = 0
    start = asyncio.Event()
    began = 0.0

    async def site(http: aiohttp.ClientSession, name: str) -> None:
        nonlocal retries
        backoff, after = Backoff(), None
        batch = {"identifiers": {f"doi:10.8888/{name}-{n:02d}": [{"uuid": f"{name}-4zz18-{n:015d}",
                                                                  "kind": "collection"}] for n in range(HERD_IDS)}}
        await start.wait()
        while True:
            body = {"after": None} if after is None else {"after": after, "to": after + HERD_IDS, **batch}
            data = orjson.dumps(body)
            try:
                async with http.post(url + "/resolver/v1/push", data=data,
                                     headers=sign(keys[name], name, "POST", "/resolver/v1/push", data)) as response:
                    raw, status = await response.read(), response.status
                    answer = orjson.loads(raw) if status in (200, 409) else {}
                    if status not in (200, 409, 503):
                        print(f"  {name}: HTTP {status}: {raw[:300]!r}")
            except (aiohttp.ClientError, OSError):
                status, answer = 599, {}
            if status == 200:
                backoff.reset()
                if after is not None:
                    acknowledged[name] = time.perf_counter() - began
                    return
                after = answer["last_seq"]
                continue
            retries += 1
            await asyncio.sleep(backoff.next())

    connector = aiohttp.TCPConnector(limit=256)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
        tasks = [asyncio.create_task(site(http, name)) for name in keys]
        await asyncio.sleep(0.5)
        began = time.perf_counter()
        start.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
    return {"sites": len(acknowledged), "all_acknowledged_s": max(acknowledged.values()), "retries": retries}


async def first_contacts(url: str, keys: dict[str, str]) -> None:
    """A push from each site (its heartbeat): what makes a push-mode site live."""
    async with aiohttp.ClientSession() as http:
        for site, key in keys.items():
            data = orjson.dumps({"after": None})
            async with http.post(url + "/resolver/v1/push", data=data,
                                 headers=sign(key, site, "POST", "/resolver/v1/push", data)) as response:
                assert response.status == 200, await response.text()


async def freshness(url: str, pid: int, seconds: float) -> dict[str, Any]:
    """The oldest successful poll across sites, sampled while the poller runs, and the resolver's CPU."""
    worst, cpu0, wall0 = 0.0, cpu_seconds(pid), time.perf_counter()
    async with aiohttp.ClientSession() as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(2)
            async with http.get(url + "/resolver/v1/sites") as response:
                sites = orjson.loads(await response.read())["sites"]
            now = time.time()
            ages = [now - s["last_poll"] if s["last_poll"] else float("inf") for s in sites]
            if float("inf") in ages:
                never = [s for s in sites if not s["last_poll"]]
                print(f"  {len(never)} sites not polled yet, e.g. {never[0]['site']}: {never[0]['poll_error']}")
            worst = max(worst, max(ages))
    return {"oldest_poll_s": worst, "cores": (cpu_seconds(pid) - cpu0) / (time.perf_counter() - wall0)}


async def pdh_lookups(resolvers: dict[str, tuple[str, dict[str, str]]], pdhs: list[str],
                      rounds: int) -> dict[str, float]:
    """Median seconds for a member site's signed "who holds this PDH", asked of each resolver in turn
    (one lookup each, alternating, so that whatever else the machine does falls on both alike), on one
    keep-alive connection each, written and read by hand (as `resolve_load`: the client's own cost
    and its noise kept small beside what is compared)."""
    connections = {}
    for label, (url, _) in resolvers.items():
        host, port = url.split("://", 1)[1].split(":")
        connections[label] = (host, *(await asyncio.open_connection(host, int(port))))
    times: dict[str, list[float]] = {label: [] for label in resolvers}
    for n in range(rounds + WARM_UP):  # the first rounds warm up and are not counted
        pdh = pdhs[n % len(pdhs)]
        target = f"/resolver/v1/contents/{pdh.replace('+', '%2B')}"
        for label in (list(resolvers) if n % 2 else list(reversed(resolvers))):
            site, key = next(iter(resolvers[label][1].items()))
            host, reader, writer = connections[label]
            headers = "".join(f"{k}: {v}\r\n" for k, v in sign(key, site, "GET", target).items())
            started = time.perf_counter()
            writer.write(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
            head, body = await read_answer(reader)
            if n >= WARM_UP:
                times[label].append(time.perf_counter() - started)
            assert head.startswith(b"HTTP/1.1 200") and orjson.loads(body)["holders"], body[:200]
    for _, _, writer in connections.values():
        writer.close()
    return {label: statistics.median(values) for label, values in times.items()}


def pdh_in_process(configs: dict[str, tuple[Path, dict[str, str]]], pdhs: list[str], rounds: int) -> dict[str, float]:
    """The resolver's own work for one PDH lookup (signature, index, liveness, JSON), without HTTP or
    another process: each resolver's service and routes in this process, asked in turn; median seconds."""
    from archipelago.resolver.app import ResolverApp
    from archipelago.resolver.config import load_resolver_config
    from archipelago.resolver.http import Request
    from archipelago.resolver.service import ResolverService

    apps = {}
    for label, (path, _) in configs.items():
        config = load_resolver_config(path)
        service = ResolverService(config, Store(config.database_url))
        service.store.load_index()
        for site in list(config.sites)[:3]:
            service.heard[site].push_ok = time.time()
        apps[label] = ResolverApp(service)
    times: dict[str, list[float]] = {label: [] for label in apps}
    for n in range(rounds):
        target = f"/resolver/v1/contents/{pdhs[n % len(pdhs)].replace('+', '%2B')}"
        for label in (list(apps) if n % 2 else list(reversed(apps))):
            site, key = next(iter(configs[label][1].items()))
            headers = {k.lower(): v for k, v in sign(key, site, "GET", target).items()}
            request = Request("GET", target, headers, b"", True)
            started = time.perf_counter()
            answer = apps[label](request)
            times[label].append(time.perf_counter() - started)
            assert getattr(answer, "status", None) == 200, answer
    return {label: statistics.median(values) for label, values in times.items()}


def pin_together(pids: list[int]) -> None:
    """Both resolvers on the same CPU: on a shared two-core VM one core can be slower than the other for
    seconds at a time (unpinned, the ratio swung 0.5-1.7 between runs of the same code; pinned, 1-2 %)."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        cpu = max(os.sched_getaffinity(0))
        for pid in pids:
            os.sched_setaffinity(pid, {cpu})


def run_fast(main: Any) -> Any:
    """A coroutine on uvloop when it is installed: the load generator shares the machine's two cores
    with the resolver, and the less it costs the less it measures itself."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_index(url: str, pid: int, seconds: float = 300) -> dict[str, Any]:
    """Until the resolver answers from memory (its index read from the database, in the background
    after it starts): what is measured is a resolver in its steady state. How long that took, and
    the resolver's memory then."""
    import urllib.request

    started = time.monotonic()
    while True:
        with urllib.request.urlopen(url + "/_health/ping") as response:
            state = json.load(response).get("index")
        if state != "loading":
            return {"state": state, "seconds": time.monotonic() - started, "rss_mb": rss_mb(pid)}
        if time.monotonic() - started > seconds:
            raise TimeoutError(f"{url}: index still loading after {seconds} s")
        time.sleep(0.2)


def run(root: Path, count: int, per_site: int, poll_window: float) -> dict[str, Any]:
    sites = site_ids(count)
    sim_port = free_port()
    sim = multiprocessing.Process(target=simulated_sites, args=(sim_port,), daemon=True)
    sim.start()
    out: dict[str, Any] = {"sites": count, "identifiers": count * per_site}
    (root / "big").mkdir()
    big, keys = write_config(root / "big", sites, sim_port, 10.0)
    out["load_s"] = bulk_load(root / "big" / "resolver.db", sites, per_site)
    small_root = root / "small"
    small_root.mkdir()
    _, small_keys = write_config(small_root, sites[:3], sim_port, 10.0)
    bulk_load(small_root / "resolver.db", sites[:3], per_site)
    resolver = ResolverProcess(big).start()
    try:
        assert resolver.process is not None
        out["index"] = wait_index(resolver.url, resolver.process.pid)
        herd_result = asyncio.run(herd(resolver.url, keys))
        connection = sqlite3.connect(root / "big" / "resolver.db")
        stored = connection.execute("SELECT count(*) FROM resolver_registrations WHERE identifier LIKE "
                                    "'doi:10.8888/%'").fetchone()[0]
        connection.close()
        out["herd"] = {**herd_result, "registrations_sent": count * HERD_IDS, "registrations_stored": stored,
                       "lost": count * HERD_IDS - stored}
        # the resolver and, in turns with it, the same HTTP server answering a constant (the floor: what
        # the machine, the load generator and HTTP allow in the same minutes); 4 turns of 1,600 each
        floor_port = free_port()
        floor = multiprocessing.Process(target=constant_server, args=(floor_port,), daemon=True)
        floor.start()
        wait_for_http(f"http://127.0.0.1:{floor_port}/")
        latencies: list[float] = []
        floor_latencies: list[float] = []
        cpu = 0.0
        for _ in range(4):
            cpu0 = cpu_seconds(resolver.process.pid)
            latencies += run_fast(resolve_load(resolver.url, sites, per_site, 16, 100))
            cpu += cpu_seconds(resolver.process.pid) - cpu0
            floor_latencies += run_fast(resolve_load(f"http://127.0.0.1:{floor_port}", sites, per_site, 16, 100))
        floor.terminate()
        latencies.sort()
        floor_latencies.sort()
        out["resolve"] = {"requests": len(latencies), "p50_ms": latencies[len(latencies) // 2] * 1e3,
                          "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
                          "resolver_cpu_ms_per_request": cpu / len(latencies) * 1e3}
        out["floor"] = {"p50_ms": floor_latencies[len(floor_latencies) // 2] * 1e3,
                        "p99_ms": floor_latencies[int(len(floor_latencies) * 0.99)] * 1e3}
        out["poll"] = asyncio.run(freshness(resolver.url, resolver.process.pid, poll_window))
    finally:
        resolver.stop()
    # PDH lookups on two otherwise idle resolvers (sites in push mode: no poller running), the same
    # database of 1,000 sites against one of 3, so the comparison is of the lookup alone; both run at
    # once and are asked in turn
    pdhs = [pdh_of(i, n) for i in range(3) for n in range(0, per_site, 97)]
    idle: dict[str, tuple[ResolverProcess, dict[str, str]]] = {}
    try:
        for label, (directory, its_sites, its_keys) in {"pdh_1000_s": (root / "big", sites, keys),
                                                        "pdh_3_s": (small_root, sites[:3], small_keys)}.items():
            config, _ = write_config(directory, its_sites, sim_port, 10.0, its_keys, "push", "push-only.yml")
            idle[label] = (ResolverProcess(config).start(), its_keys)
            assert idle[label][0].process is not None
            wait_index(idle[label][0].url, idle[label][0].process.pid)
            asyncio.run(first_contacts(idle[label][0].url, {s: its_keys[s] for s in its_sites[:3]}))
        pids = {label: process.process.pid for label, (process, _) in idle.items() if process.process is not None}
        pin_together(list(pids.values()))
        cpu0 = {label: cpu_seconds(pid) for label, pid in pids.items()}
        rounds = 4000
        out.update(run_fast(pdh_lookups({label: (process.url, its_keys) for label, (process, its_keys)
                                            in idle.items()}, pdhs, rounds)))
        out["pdh_cpu_ms"] = {label: (cpu_seconds(pid) - cpu0[label]) / (rounds + WARM_UP) * 1e3
                             for label, pid in pids.items()}
    finally:
        for process, _ in idle.values():
            process.stop()
    sim.terminate()
    out["pdh_ratio"] = out["pdh_1000_s"] / out["pdh_3_s"]
    out["pdh_in_process_s"] = pdh_in_process({"1000": (root / "big" / "push-only.yml", keys),
                                              "3": (small_root / "push-only.yml", small_keys)}, pdhs, 20_000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--per-site", type=int, default=1000)
    parser.add_argument("--poll-window", type=float, default=35.0, help="seconds the poller is watched")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="archi-bench-resolver-") as scratch:
        out = run(Path(scratch), args.sites, args.per_site, args.poll_window)
    if args.json:
        print(json.dumps(out, indent=2))
        return
    herd_, poll = out["herd"], out["poll"]
    print(f"resolver with {out['sites']:,} sites and {out['identifiers']:,} identifiers (bulk-loaded in "
          f"{out['load_s']:.1f} s); its index in memory ({out['index']['state']}) read {out['index']['seconds']:.1f} s "
          f"after it started, resolver RSS {out['index']['rss_mb']:,.0f} MB")
    print(f"  resolve, 16 clients, {out['resolve']['requests']:,} requests: p50 {out['resolve']['p50_ms']:.2f} ms  "
          f"p99 {out['resolve']['p99_ms']:.2f} ms   (target p99 < 5 ms); resolver CPU "
          f"{out['resolve']['resolver_cpu_ms_per_request']:.2f} ms a request")
    print(f"    the same load against the same HTTP server answering a constant, in turns with it: p50 "
          f"{out['floor']['p50_ms']:.2f} ms  p99 {out['floor']['p99_ms']:.2f} ms   (what the machine allows meanwhile)")
    print(f"  herd: {herd_['sites']:,} sites pushing in the same second, {herd_['registrations_sent']:,} "
          f"registrations: {herd_['lost']} lost, every site acknowledged (live by push) after "
          f"{herd_['all_acknowledged_s']:.1f} s, {herd_['retries']:,} backed-off retries   (target 0 lost, <= 30 s)")
    print(f"  poller: {out['sites']:,} sites at a 10 s interval: oldest poll {poll['oldest_poll_s']:.1f} s, "
          f"resolver CPU {poll['cores']:.2f} cores   (target <= 11 s, <= 1 core)")
    print(f"  PDH lookup: {out['pdh_1000_s'] * 1e3:.2f} ms with {out['sites']:,} sites, {out['pdh_3_s'] * 1e3:.2f} ms "
          f"with 3: ratio {out['pdh_ratio']:.2f}   (target <= 1.0; a broadcast would ask {out['sites'] - 1:,} peers); "
          f"resolver CPU {out['pdh_cpu_ms']['pdh_1000_s']:.3f} / {out['pdh_cpu_ms']['pdh_3_s']:.3f} ms a lookup")
    inside = out["pdh_in_process_s"]
    print(f"    the resolver's own work for a lookup (in process, no HTTP): {inside['1000'] * 1e6:.1f} us with "
          f"{out['sites']:,} sites, {inside['3'] * 1e6:.1f} us with 3: ratio {inside['1000'] / inside['3']:.3f}")


if __name__ == "__main__":
    main()
