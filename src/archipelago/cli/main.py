"""`archi`: the command line. Each command group is a module beside this one."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import __version__
from . import (
    cluster_cmds,
    collection_cmds,
    compute_cmds,
    data_cmds,
    keep_cmds,
    launch_cmds,
    notebook_cmds,
    project_cmds,
    resolver_cmds,
    run_cmds,
    token_cmds,
    user_cmds,
)
from .common import JsonOpt
from .errors import Typer
from .manifest_cmds import app as manifest_app
from .output import emit

app = Typer(help="Archipelago: federated data and analysis.", no_args_is_help=True, pretty_exceptions_enable=False)
app.add_typer(manifest_app, name="manifest")
cluster_cmds.register(app)
data_cmds.register(app)
app.add_typer(collection_cmds.app, name="collection")
app.add_typer(project_cmds.app, name="project")
app.add_typer(token_cmds.app, name="token")
app.add_typer(user_cmds.app, name="user")
keep_cmds.register(app)
compute_cmds.register(app)
run_cmds.register(app)
resolver_cmds.register(app)
launch_cmds.register(app)
notebook_cmds.register(app)


@app.command()
def version(as_json: JsonOpt = False) -> None:
    """Print the version."""
    emit({"version": __version__}, as_json, f"archipelago {__version__}")


def _print_version(wanted: bool) -> None:
    if wanted:
        emit({"version": __version__}, False, f"archipelago {__version__}")
        raise typer.Exit()


@app.callback()
def archi(
    show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                               help="Print the version and exit.")] = False,
) -> None:
    """Archipelago: federated data and analysis."""


def main() -> None:  # pragma: no cover - console entry point
    app()
