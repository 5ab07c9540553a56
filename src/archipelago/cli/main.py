"""`archi`: the command line. Each command group is a module beside this one.

`app` is built when first asked for. Run from a shell as `archi ls …` or `archi get …` (the commands
scripts call in loops over big collections), it holds the data commands alone: importing every
group (the cluster's configuration models, SQLAlchemy, the CWL runner) cost more than listing a
directory of a million-file collection. Anything else, and every import from Python, gets them all."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .. import __version__
from .common import JsonOpt
from .errors import Typer
from .output import emit

QUICK = frozenset({"ls", "get"})


def version(as_json: JsonOpt = False) -> None:
    """Print the version."""
    emit({"version": __version__}, as_json, f"archipelago {__version__}")


def _print_version(wanted: bool) -> None:
    if wanted:
        emit({"version": __version__}, False, f"archipelago {__version__}")
        raise typer.Exit()


def archi(
    show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                               help="Print the version and exit.")] = False,
) -> None:
    """Archipelago: federated data and analysis."""


def build(quick: bool = False) -> typer.Typer:
    """The `archi` app: every command group, or (quick) the data commands alone."""
    from . import data_cmds

    app = Typer(help="Archipelago: federated data and analysis.", no_args_is_help=True, pretty_exceptions_enable=False)
    app.callback()(archi)
    if quick:
        data_cmds.register(app)
        return app
    from . import (
        cluster_cmds,
        collection_cmds,
        compute_cmds,
        keep_cmds,
        launch_cmds,
        notebook_cmds,
        project_cmds,
        resolver_cmds,
        run_cmds,
        token_cmds,
        user_cmds,
    )
    from .manifest_cmds import app as manifest_app

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
    app.command()(version)
    return app


def _from_a_shell() -> bool:
    return Path(sys.argv[0]).name in ("archi", "__main__.py") and len(sys.argv) > 1 and sys.argv[1] in QUICK


def __getattr__(name: str) -> Any:
    if name == "app":
        globals()["app"] = built = build(quick=_from_a_shell())
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:  # pragma: no cover - console entry point
    build(quick=_from_a_shell())()
