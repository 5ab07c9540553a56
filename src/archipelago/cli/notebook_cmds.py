"""`archi notebook start|stop|serve`: a JupyterLab next to the data (archipelago.notebook), without
the resolver (`archi launch ID --notebook` calls the same `archipelago.notebook.start`)."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import emit

app = Typer(help="Notebooks: JupyterLab at a cluster, datasets mounted read-only, reached through its API "
                 "server with your token.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="notebook")


def _mounts(values: list[str]) -> dict[str, str]:
    mounts = {}
    for text in values:
        target, sep, source = text.partition("=")
        if not sep or not target.startswith("/") or not source:
            raise typer.BadParameter(f"{text!r}: give --mount /path/in/notebook=COLLECTION-UUID-or-PDH[/path]")
        mounts[target] = source
    return mounts


@app.command("start")
def start(
    mount: Annotated[list[str], typer.Option("--mount", help="/path=COLLECTION (UUID or PDH, optionally /path "
                                                            "in it), read-only; repeatable.")] = [],  # noqa: B006
    cluster: Annotated[str | None, typer.Option(help="The cluster to run at (default: your home).")] = None,
    idle: Annotated[float, typer.Option(help="Minutes without use before it stops (its notebooks saved).")] = 30.0,
    wait: Annotated[bool, typer.Option(help="Wait until the lab answers.")] = True,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start a notebook; prints its URL (open it once with ?token=<your token for that cluster>)."""
    from ..formats.tokens import salt_for
    from ..notebook.session import start as start_notebook
    from ..notebook.session import wait_ready

    client = api_client(profile, as_json)
    session = start_notebook(client, cluster, _mounts(mount), idle_minutes=idle)
    token = client.token if session.cluster_id == client.config().get("ClusterID") else \
        salt_for(client.token, session.cluster_id)
    if wait:
        wait_ready(client, session, token)
    emit({"url": session.url, "request": session.request_uuid, "cluster": session.cluster_id}, as_json,
         f"notebook  {session.request_uuid} at {session.cluster_id}\nurl       {session.url}\n"
         f"open once with ?token=<your token{'' if token == client.token else ' salted for ' + session.cluster_id}>"
         f" (a cookie keeps you in); stops after {idle:g} minutes idle, notebooks saved as its output")


@app.command("stop")
def stop(
    request: Annotated[str, typer.Argument(help="The notebook's container request UUID.")],
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop a notebook; its notebooks are saved as the request's output collection."""
    from ..formats.tokens import salt_for
    from ..notebook.session import stop as stop_notebook

    client = api_client(profile, as_json)
    token = client.token if request[:5] == client.config().get("ClusterID") else salt_for(client.token, request[:5])
    record = stop_notebook(client, request, token)
    emit({"request": request, "state": record["state"], "priority": record.get("priority")}, as_json,
         f"notebook {request}: stopping (its notebooks will be in the request's output collection)")


@app.command("serve", hidden=True)
def serve(
    socket: Annotated[str, typer.Option(help="The unix socket to serve on.")],
    base_url: Annotated[str, typer.Option(help="The proxy path the lab is served under.")],
    root: Annotated[str, typer.Option(help="The notebooks' directory (saved as output).")] = "/out",
    idle_seconds: Annotated[float, typer.Option(help="Stop after this long without use.")] = 1800.0,
) -> None:
    """Inside a notebook's container: JupyterLab on the socket, stopped once idle."""
    from ..notebook.serve import serve as serve_lab

    raise typer.Exit(serve_lab(socket, base_url, root, idle_seconds))
