"""`archi container run|list|show|logs|cancel`, and the services `archi dispatch` and
`archi crunch-run` (what the dispatcher starts for each container)."""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import ConfigError, load_config
from ..errors import ArchipelagoError
from ..sdk.client import ApiClient
from ..sdk.collection import Collection
from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import BAD_INPUT, FAILED, console, emit, fail, stamped

app = Typer(help="Containers: run a command on a cluster next to its data, and follow it.", no_args_is_help=True)
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="container")
    root.command("crunch-run")(crunch_run)
    root.command()(dispatch)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?", text.strip(), re.IGNORECASE)
    if not match:
        raise typer.BadParameter(f"{text!r} is not a size like 512M or 2G")
    return int(float(match[1]) * UNITS[match[2].upper()])


def parse_duration(text: str) -> int:
    match = re.fullmatch(r"(\d+)\s*([smhd]?)", text.strip())
    if not match:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 30m or 2h")
    return int(match[1]) * SECONDS[match[2] or "s"]


def parse_mount(text: str) -> tuple[str, dict[str, Any]]:
    path, sep, source = text.partition("=")
    if not sep or not path.startswith("/"):
        raise typer.BadParameter(f"{text!r}: give --mount /path/in/container=COLLECTION[/file]")
    ident, _, inner = source.partition("/")
    key = "portable_data_hash" if "+" in ident else "uuid"
    return path, {"kind": "collection", key: ident, **({"path": inner} if inner else {})}


@app.command("run")
def container_run(
    command: Annotated[list[str], typer.Argument(help="The command and its arguments (after --).")],
    cluster: Annotated[str | None, typer.Option(help="Run on this cluster of the federation.")] = None,
    image: Annotated[str | None, typer.Option(help="Container image (PDH, collection or repo:tag).")] = None,
    mount: Annotated[list[str] | None, typer.Option(help="PATH=COLLECTION[/file] (repeatable).")] = None,
    ram: Annotated[str, typer.Option(help="RAM, e.g. 512M or 2G.")] = "256M",
    cpus: Annotated[int, typer.Option(min=1, help="Cores.")] = 1,
    time_limit: Annotated[str | None, typer.Option("--time", help="Time limit, e.g. 30m or 2h.")] = None,
    name: Annotated[str | None, typer.Option(help="Name of the request.")] = None,
    reuse: Annotated[bool, typer.Option(help="Reuse an equal finished container.")] = True,
    wait: Annotated[bool, typer.Option(help="Follow it until it ends.")] = True,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a command in a container; prints the output collection. The working directory and
    output directory is /out; mounts are read-only."""
    client = api_client(profile, as_json)
    mounts: dict[str, Any] = {"/out": {"kind": "tmp", "capacity": 1 << 30}}
    mounts.update(parse_mount(m) for m in mount or [])
    scheduling = {"max_run_time": parse_duration(time_limit)} if time_limit else {}
    attrs = {"name": name or " ".join(command)[:200], "command": command, "container_image": image,
             "output_path": "/out", "cwd": "/out", "mounts": mounts, "priority": 500, "state": "Committed",
             "runtime_constraints": {"ram": parse_size(ram), "vcpus": cpus}, "use_existing": reuse,
             "scheduling_parameters": scheduling}
    params = {"cluster_id": cluster} if cluster else None
    request = client.request("POST", "container_requests", params, {"container_request": attrs})
    if not wait:
        emit(request, as_json, request["uuid"])
        return
    request = follow(client, request["uuid"], show=not as_json)
    report = summary(client, request)
    emit(report, as_json, human_summary(report))
    if report["exit_code"] != 0:
        raise typer.Exit(FAILED)


def follow(client: ApiClient, uuid: str, show: bool = True) -> dict[str, Any]:
    """Follow the request until it is Final: its container's state changes, and the new lines of
    its stdout and stderr as the executor publishes them."""
    seen, log_seen, printed = None, None, {"stdout.txt": 0, "stderr.txt": 0}
    while True:
        request = client.container_requests.get(uuid)
        container = client.containers.get(request["container_uuid"]) if request.get("container_uuid") else None
        state = container["state"] if container else request["state"]
        if show and state != seen:
            stamped(time.strftime('%H:%M:%S'), f"{uuid} {state}")
            seen = state
        if show and container and container.get("log") and container["log"] != log_seen:
            log_seen = container["log"]
            tail(client, log_seen, printed)
        if request["state"] == "Final":
            return request
        time.sleep(0.2)


def tail(client: ApiClient, log_pdh: str, printed: dict[str, int]) -> None:
    """Print the log lines not printed yet."""
    try:
        logs = Collection(client, log_pdh)
        names = {path for path, _ in logs.files()}
        for name in printed:
            if name in names:
                lines = logs.read(name).decode("utf-8", "replace").splitlines()
                for line in lines[printed[name]:]:
                    stamped(name[:6], line)
                printed[name] = len(lines)
    except ArchipelagoError:
        pass  # a log collection that is being replaced: the next one will do


def summary(client: ApiClient, request: dict[str, Any]) -> dict[str, Any]:
    container = client.containers.get(request["container_uuid"]) if request.get("container_uuid") else {}
    output = client.collections.get(request["output_uuid"]) if request.get("output_uuid") else None
    return {"uuid": request["uuid"], "state": request["state"], "container_uuid": request.get("container_uuid"),
            "container_state": container.get("state"), "exit_code": container.get("exit_code"),
            "output_uuid": request.get("output_uuid"), "log_uuid": request.get("log_uuid"),
            "output_pdh": output["portable_data_hash"] if output else None,
            "error": (container.get("runtime_status") or {}).get("error")}


def human_summary(report: dict[str, Any]) -> str:
    lines = [f"request    {report['uuid']}", f"container  {report['container_uuid']} {report['container_state']}"
             f" exit code {report['exit_code']}"]
    if report["output_uuid"]:
        lines.append(f"output     {report['output_uuid']} ({report['output_pdh']})")
    if report["log_uuid"]:
        lines.append(f"log        {report['log_uuid']}  (archi container logs {report['uuid']})")
    if report["error"]:
        lines.append(f"error      {report['error']}")
    return "\n".join(lines)


@app.command("list")
def container_list(limit: int = 50, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Your container requests, newest first."""
    result = api_client(profile, as_json).container_requests.list(order=["created_at desc"], limit=limit)
    emit(result, as_json, "\n".join(f"{r['uuid']}  {r['state']:<11} {r['name'] or ''}" for r in result["items"]))


@app.command("show")
def container_show(uuid: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """A request with its container's state, exit code, output and log."""
    client = api_client(profile, as_json)
    report = summary(client, client.container_requests.get(uuid))
    emit(report, as_json, human_summary(report))


@app.command("logs")
def container_logs(
    uuid: str,
    file: Annotated[str, typer.Option(help="Which log: stdout.txt, stderr.txt, crunch-run.txt, node.json.")] = "",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a finished request's logs."""
    client = api_client(profile, as_json)
    request = client.container_requests.get(uuid)
    if not request.get("log_uuid"):
        fail(f"{uuid} has no log collection yet (state {request['state']})", FAILED, as_json)
    logs = Collection(client, request["log_uuid"])
    names = [file] if file else [path for path, _ in logs.files()]
    texts = {name: logs.read(name).decode("utf-8", "replace") for name in names}
    emit(texts, as_json, "\n".join(f"==> {n} <==\n{t}" for n, t in texts.items()))


@app.command("cancel")
def container_cancel(uuid: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Cancel a request: priority 0 stops its container if nothing else wants it."""
    record = api_client(profile, as_json).container_requests.update(uuid, {"priority": 0})
    emit(record, as_json, f"{uuid} {record['state']} (priority 0)")


def crunch_run(
    container_uuid: Annotated[str, typer.Argument(help="A Locked container.")],
    runtime: Annotated[str | None, typer.Option(envvar="ARCHI_CONTAINER_RUNTIME",
                                                help="bubblewrap, docker or podman")] = None,
    work_dir: Annotated[Path | None, typer.Option(envvar="ARCHI_WORK_DIR", help="Where to stage.")] = None,
) -> None:
    """Run one container (started by the dispatcher, with its credentials in the environment)."""
    from ..executor.run import Executor
    from ..executor.runtimes import runtime_for

    chosen = runtime_for(runtime or "bubblewrap", os.environ.get("DOCKER_HOST"), os.environ.get("ARCHI_PODMAN_STORAGE"),
                         os.environ.get("ARCHI_IMAGE_USER") == "1")
    state = Executor(ApiClient.from_env(), container_uuid, chosen, work_dir).run()
    console.print(f"{container_uuid} {state}", highlight=False, markup=False)
    raise typer.Exit(0 if state == "Complete" else FAILED)


def dispatch(config: Annotated[Path, typer.Option(help="Cluster configuration YAML.")]) -> None:
    """Run the configured dispatcher (local or Slurm) in the foreground (`archi cluster up` runs one)."""
    from ..compute.dispatch.service import dispatcher

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc), BAD_INPUT)
    loop = dispatcher(cfg)
    print(f"dispatching containers of {cfg.cluster_id} (pid {os.getpid()})", flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        sys.exit(0)
