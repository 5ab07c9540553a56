"""`archi cluster init|up`, `archi api`, `archi federation up`, `archi demo`: running clusters."""

from __future__ import annotations

import contextlib
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ..config import ConfigError, load_config
from .common import JsonOpt
from .errors import Typer
from .output import BAD_INPUT, emit, fail

cluster_app = Typer(help="Create and run a cluster.", no_args_is_help=True)
federation_app = Typer(help="Run a local federation of clusters.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(cluster_app, name="cluster")
    root.add_typer(federation_app, name="federation")
    root.command()(api)
    root.command()(demo)


@cluster_app.command("init")
def cluster_init(
    directory: Annotated[Path, typer.Argument(help="Directory for the configuration and data.")],
    cluster_id: Annotated[str, typer.Option(help="5 characters from a-z and 0-9.")] = "zzzzz",
    database_url: Annotated[str | None, typer.Option(help="Default: an SQLite file in DIRECTORY.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a working cluster configuration with fresh secrets, and an admin token."""
    from ..files import owner_only
    from ..run.cluster import init_cluster

    owner_only()  # the database it creates holds the admin token
    try:
        result = init_cluster(directory, cluster_id, database_url)
    except (ConfigError, FileExistsError) as exc:
        fail(str(exc), BAD_INPUT, as_json)
    emit({"config": str(result.config_path), "cluster_id": cluster_id, "api_url": result.config.api.url,
          "admin_token": result.admin_token}, as_json,
         f"wrote {result.config_path}\nAPI     {result.config.api.url}\nadmin token  {result.admin_token}")


@cluster_app.command("up")
def cluster_up(directory: Annotated[Path, typer.Argument(help="A directory made by `archi cluster init`.")],
               as_json: JsonOpt = False) -> None:
    """Run the cluster's API server and keepstore in this process until interrupted."""
    import asyncio

    from ..files import owner_only
    from ..run.cluster import CONFIG_NAME, load_cluster, serve_cluster

    owner_only()  # its database (and -wal, -shm), blocks, caches and logs: none for the host's other users
    try:
        config, token = load_cluster(directory)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT, as_json)

    async def run() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(serve_cluster(config, Path(directory) / CONFIG_NAME, ready))
        await ready.wait()
        info = {"cluster_id": config.cluster_id, "api_url": config.api.url,
                "keepstore_url": f"http://{config.keepstore.listen}", "admin_token": token}
        emit(info, as_json, f"cluster {config.cluster_id} up\nAPI        {config.api.url}\nkeepstore  "
                            f"http://{config.keepstore.listen}\nadmin token {token}")
        sys.stdout.flush()
        await task

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def api(
    config: Annotated[Path, typer.Option(help="Cluster configuration YAML.")],
    worker: Annotated[bool, typer.Option(hidden=True, help="An extra API process of `cluster up`.")] = False,
) -> None:
    """Run the API server alone, in the foreground."""
    from ..files import owner_only
    from ..run.cluster import serve_api

    owner_only()  # what it writes (a SQLite database's -wal and -shm among them) is its owner's alone
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)
    print(f"API server listening on {cfg.api.url}", flush=True)
    serve_api(cfg, prepare=not worker)  # the first process has migrated the database


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@federation_app.command("up")
def federation_up(
    directory: Annotated[Path, typer.Argument(help="Directory for the clusters (created if needed).")],
    clusters: Annotated[int, typer.Option(min=1, max=9, help="How many clusters.")] = 3,
    login_cluster: Annotated[bool, typer.Option(help="The first cluster issues all users and tokens.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Boot a federation of N clusters on loopback (one process each) until interrupted."""
    import time

    from ..run.cluster import CONFIG_NAME, load_cluster
    from ..run.federation import cluster_ids, init_federation
    from ..run.processes import ClusterProcess
    from ..run.resolver import local_resolver

    directory = directory.resolve()
    if not all((directory / cid / CONFIG_NAME).exists() for cid in cluster_ids(clusters)):
        init_federation(directory, clusters, login_cluster)
    processes = [ClusterProcess(directory / cid) for cid in cluster_ids(clusters)]
    resolver = local_resolver(directory)  # the federation's resolver (run/resolver.py), started first
    signal.signal(signal.SIGTERM, _interrupt)  # stopping the federation stops its clusters
    try:
        if resolver is not None:
            resolver.start()
        for process in processes:
            process.start()
        info = [{"cluster_id": p.config.cluster_id, "api_url": p.api_url, "keepstore_url": p.keep_url,
                 "admin_token": load_cluster(p.directory)[1], "resolver_url": resolver and resolver.url}
                for p in processes]
        emit(info, as_json, "\n".join(f"{i['cluster_id']}  {i['api_url']}  admin token {i['admin_token']}"
                                      for i in info) + (f"\nresolver {resolver.url}" if resolver else ""))
        sys.stdout.flush()
        reported: set[str] = set()
        # a member that dies is reported, and the others keep serving (as a real federation would)
        while any(p.process and p.process.poll() is None for p in processes):
            for process in processes:
                cid = process.config.cluster_id
                if cid not in reported and process.process and process.process.poll() is not None:
                    reported.add(cid)
                    print(f"cluster {cid} stopped (exit status {process.process.returncode}); "
                          "the others keep serving", file=sys.stderr, flush=True)
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:
            process.stop()
        if resolver is not None:
            resolver.stop()


def demo(
    source: Annotated[Path | None, typer.Option(help="Directory to store (default: a generated one).")] = None,
    federated: Annotated[bool, typer.Option(help="Three clusters and the federated scenario.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Boot a federation on loopback: a directory into a collection and back, then private cohorts
    that stay home, a panel read across clusters, a copy, and the bytes that crossed."""
    from ..run.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="archi-demo-") as scratch:
        report = run_demo(Path(scratch), source, federated)
    emit(report.as_dict(), as_json, report.text())
    if not report.ok:
        raise typer.Exit(1)
