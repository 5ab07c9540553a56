"""`archi cluster init|up|status|stop`, `archi api`, `archi federation up`, `archi demo`: running clusters."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from ..config import ClusterConfig, ConfigError, load_config
from .common import JsonOpt
from .errors import Typer
from .output import BAD_INPUT, FAILED, emit, fail, note, spinner

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
def cluster_up(
    directory: Annotated[Path, typer.Argument(help="A directory made by `archi cluster init`.")],
    detach: Annotated[bool, typer.Option(help="Run it in the background (its log: DIR/cluster.log) and return "
                                              "once it serves; `archi cluster stop DIR` stops it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run the cluster's API server, keepstore and dispatcher in this process until Ctrl-C, SIGTERM or
    `archi cluster stop DIR`; prints its URLs, its admin token and the `export` line to use it."""
    import asyncio

    from ..files import owner_only
    from ..run.cluster import CONFIG_NAME, serve_cluster
    from ..run.control import check_ports, cluster_ports, hold, start_detached

    owner_only()  # its database (and -wal, -shm), blocks, caches and logs: none for the host's other users
    config, token = _load(directory, as_json)
    directory = directory.resolve()
    if detach:
        with spinner(f"starting cluster {config.cluster_id} in the background (log: {directory / 'cluster.log'})",
                     not as_json):
            pid = start_detached(directory, config)
        _report_up(config, token, pid, directory, as_json, detached=True)
        return
    hold(directory, config.cluster_id)  # held until this process ends: a second `up` stops here, naming it
    check_ports(cluster_ports(config), directory / CONFIG_NAME)  # and so does a port someone else holds
    progress = None if as_json else (lambda step: note(f"{config.cluster_id}  {step}", "dim"))
    if progress:
        progress(f"starting from {directory}")

    async def run() -> None:
        ready = asyncio.Event()
        task = asyncio.create_task(serve_cluster(config, directory / CONFIG_NAME, ready, progress))
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if ready.is_set():
            _report_up(config, token, os.getpid(), directory, as_json)
        await task  # until a signal; or what ended the start (it stops at once on SIGTERM or SIGINT too)

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    except (OSError, SQLAlchemyError) as exc:
        fail(f"cluster {config.cluster_id} could not start: {_reason(exc)}", FAILED, as_json)


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]


def _load(directory: Path, as_json: bool) -> tuple[ClusterConfig, str | None]:
    from ..run.cluster import CONFIG_NAME, load_cluster

    if not (directory / CONFIG_NAME).is_file():
        fail(f"{directory} is not a cluster directory (it has no {CONFIG_NAME}): make one with "
             f"`archi cluster init {directory}`", BAD_INPUT, as_json)
    try:
        return load_cluster(directory)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT, as_json)


def export_line(config: ClusterConfig, token: str | None) -> str:
    """What a shell needs to use the cluster with `archi` (and the SDK): ready to paste."""
    insecure = " ARCHI_API_HOST_INSECURE=1" if config.api.tls_cert else ""  # our own self-signed certificate
    return f"export ARCHI_API_HOST={config.api.url} ARCHI_API_TOKEN={token or '<a token>'}{insecure}"


def _report_up(config: ClusterConfig, token: str | None, pid: int, directory: Path, as_json: bool,
               detached: bool = False) -> None:
    how = f"`archi cluster stop {directory}`" if detached else f"Ctrl-C here or `archi cluster stop {directory}`"
    info = {"cluster_id": config.cluster_id, "pid": pid, "api_url": config.api.url, "web_url": config.api.web_url,
            "keepstore_url": f"http://{config.keepstore.listen}", "admin_token": token,
            "export": export_line(config, token)}
    emit(info, as_json, f"cluster {config.cluster_id} up (pid {pid}); stop it with {how}\n"
                        f"API          {info['api_url']}\nweb UI       {info['web_url']}\n"
                        f"keepstore    {info['keepstore_url']}\n"
                        f"admin token  {token}\nto use it from a shell:\n{info['export']}")
    sys.stdout.flush()


@cluster_app.command("status")
def cluster_status(
    directory: Annotated[Path, typer.Argument(help="A directory made by `archi cluster init`.")],
    as_json: JsonOpt = False,
) -> None:
    """Whether the cluster is up: the process running it, whether its API and keepstore answer, and
    the `export` line to use it. Exit status 0 if it is up and answers, 1 otherwise."""
    from ..run.control import answers, running_pid

    config, token = _load(directory, as_json)
    pid = running_pid(directory)
    keep_url = f"http://{config.keepstore.listen}"
    health = {"api": answers(config.api.url + "/_health/ping"), "keepstore": answers(keep_url)} if pid else {}
    healthy = bool(health) and all(health.values())
    info = {"cluster_id": config.cluster_id, "directory": str(directory.resolve()), "up": pid is not None,
            "pid": pid, "healthy": healthy, "answers": health, "api_url": config.api.url, "web_url": config.api.web_url,
            "keepstore_url": keep_url, "admin_token": token, "export": export_line(config, token)}
    if pid is None:
        human = f"cluster {config.cluster_id} is not running (`archi cluster up {directory}` starts it)"
    else:
        state = "answering" if healthy else "not answering: " + ", ".join(k for k, v in health.items() if not v)
        human = (f"cluster {config.cluster_id} up (pid {pid}), {state}\nAPI          {config.api.url}\n"
                 f"web UI       {config.api.web_url}\nkeepstore    {keep_url}\n{info['export']}")
    emit(info, as_json, human)
    if not healthy:
        raise typer.Exit(FAILED)


@cluster_app.command("stop")
def cluster_stop(
    directory: Annotated[Path, typer.Argument(help="A directory made by `archi cluster init`.")],
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for it to exit.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Stop the cluster `archi cluster up DIR` runs (SIGTERM, as Ctrl-C would), waiting until it has exited."""
    from ..run.control import stop

    config, _ = _load(directory, as_json)
    with spinner(f"stopping cluster {config.cluster_id}", not as_json):
        pid = stop(directory, timeout)
    emit({"cluster_id": config.cluster_id, "stopped": pid is not None, "pid": pid}, as_json,
         f"cluster {config.cluster_id} stopped (pid {pid})" if pid else f"cluster {config.cluster_id} was not running")


def api(
    config: Annotated[Path, typer.Option(help="Cluster configuration YAML.")],
    worker: Annotated[bool, typer.Option(hidden=True, help="An extra API process of `cluster up`.")] = False,
) -> None:
    """Run the API server alone, in the foreground."""
    from ..files import owner_only
    from ..run.cluster import serve_api

    owner_only()  # what it writes (a SQLite database's -wal and -shm among them) is its owner's alone
    from ..run.control import Port, check_ports

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)
    if not worker:  # the extra processes of `cluster up` share the port on purpose (SO_REUSEPORT)
        check_ports([Port("the API", "api.listen", cfg.api.host, cfg.api.port)], config)
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
        resolver_url = resolver.url if resolver is not None else None
        info = [federation_member(p.config, load_cluster(p.directory)[1], p.keep_url, resolver_url)
                for p in processes]
        emit(info, as_json, federation_text(info, resolver_url))
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


def federation_member(config: ClusterConfig, token: str | None, keep_url: str, resolver_url: str | None
                      ) -> dict[str, str | None]:
    """What `archi federation up` says of one of its clusters (`--json`: one object each)."""
    return {"cluster_id": config.cluster_id, "api_url": config.api.url, "web_url": config.api.web_url,
            "keepstore_url": keep_url, "admin_token": token, "export": export_line(config, token),
            "resolver_url": resolver_url}


def federation_text(members: list[dict[str, str | None]], resolver_url: str | None) -> str:
    """Each cluster's API, web UI and admin token, and the line to paste to use it from a shell."""
    lines = []
    for member in members:
        lines += [f"{member['cluster_id']}  API {member['api_url']}  web UI {member['web_url']}  "
                  f"admin token {member['admin_token']}", f"  {member['export']}"]
    return "\n".join(lines) + (f"\nresolver {resolver_url}" if resolver_url else "")


def demo(
    source: Annotated[Path | None, typer.Option(help="Directory to store (default: a generated one).")] = None,
    federated: Annotated[bool, typer.Option(help="Three clusters and the federated scenario.")] = True,
    results: Annotated[Path, typer.Option(help="Where the meta-analysis's forest plot (forest-plot.png), table "
                                               "and JSON are written.")] = Path("demo-results"),
    as_json: JsonOpt = False,
) -> None:
    """Boot a federation on loopback: a directory into a collection and back, then private cohorts
    that stay home, a panel read across clusters, a copy, and the bytes that crossed; then one CWL
    workflow next to three cohorts, whose forest plot is written to RESULTS."""
    from ..run.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="archi-demo-") as scratch:
        report = run_demo(Path(scratch), source, federated, results,
                          progress=lambda step: note(f"demo  {step}", "dim"))
    emit(report.as_dict(), as_json, report.text())
    if not report.ok:
        raise typer.Exit(1)
