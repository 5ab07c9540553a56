"""`archi collection show|list|share`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from .common import JsonOpt, ProfileOpt, api_client
from .errors import Typer
from .output import BAD_INPUT, emit, fail

app = Typer(help="Collections: show, list, share.", no_args_is_help=True)
LEVELS = {"read": "can_read", "write": "can_write", "manage": "can_manage"}


@app.command("show")
def collection_show(uuid: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Show one collection's record."""
    record = api_client(profile, as_json).collections.get(uuid)
    fields = ("uuid", "name", "owner_uuid", "portable_data_hash", "file_count", "file_size_total", "modified_at")
    emit(record, as_json, "\n".join(f"{k:18} {record.get(k)}" for k in fields))


@app.command("list")
def collection_list(
    project: Annotated[str | None, typer.Option(help="Only this project's collections.")] = None,
    name: Annotated[str | None, typer.Option(help="Name pattern (SQL LIKE, e.g. 'run-%').")] = None,
    limit: int = 100,
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List readable collections, newest first."""
    filters: list[list[Any]] = []
    if project:
        filters.append(["owner_uuid", "=", project])
    if name:
        filters.append(["name", "like", name])
    result = api_client(profile, as_json).collections.list(filters, limit=limit)
    emit(result, as_json, "\n".join(f"{c['uuid']}  {c['portable_data_hash']:>44}  {c['name']}"
                                    for c in result["items"]))


@app.command("share")
def collection_share(
    uuid: str,
    with_user: Annotated[str, typer.Option("--with", help="User (or role group) UUID to share with.")],
    level: Annotated[str, typer.Option(help="read, write or manage.")] = "read",
    profile: ProfileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Share a collection or project with a user: a permission link."""
    if level not in LEVELS:
        fail("--level must be read, write or manage", BAD_INPUT, as_json)
    link = api_client(profile, as_json).links.create(
        {"link_class": "permission", "name": LEVELS[level], "tail_uuid": with_user, "head_uuid": uuid})
    emit(link, as_json, f"{link['uuid']}: {with_user} {LEVELS[level]} {uuid}")
