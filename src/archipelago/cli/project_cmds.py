"""`archi project create|list`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import emit

app = Typer(help="Projects: create, list.", no_args_is_help=True)


@app.command("create")
def project_create(
    name: str,
    parent: Annotated[str | None, typer.Option(help="Parent project UUID.")] = None,
    ensure_unique_name: Annotated[bool, typer.Option(
        "--ensure-unique-name", help="If the name is taken there, add a number: 'name (2)'.")] = False,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project (optionally inside another)."""
    attrs: dict[str, Any] = {"name": name, "group_class": "project"}
    if parent:
        attrs["owner_uuid"] = parent
    group = api_client(profile, as_json).groups.create(attrs, ensure_unique_name=ensure_unique_name)
    emit(group, as_json, group["uuid"])


@app.command("list")
def project_list(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """List readable projects."""
    result = api_client(profile, as_json).groups.list([["group_class", "=", "project"]], limit=1000)
    emit(result, as_json, "\n".join(f"{g['uuid']}  {g['name']}" for g in result["items"]))
