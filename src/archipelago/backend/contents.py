"""`groups.contents` and `groups.shared`, composed from `Backend.list` (so any Backend answers them):
what a project holds, of every kind, paged as one list; and the projects others share with the caller.

Arvados' rules: a filter on an attribute a kind does not have leaves that kind out; an order on
one it does not have is dropped for it; offset and limit run over the kinds in a fixed order."""

from __future__ import annotations

from typing import Any

from ..errors import ArchipelagoError
from ..resources.registry import RESOURCE_TYPES
from .interface import Backend, Caller, ListParams, Record

# the kinds a project's contents lists, in order, and the filters choosing which of their objects
CONTENT_KINDS = [(kind.name, kind.project_contents) for kind in RESOURCE_TYPES if kind.project_contents is not None]
COLUMNS = {kind.name: frozenset(c.key for c in kind.model.__table__.columns) for kind in RESOURCE_TYPES}


def _has(kind: str, attribute: str) -> bool:
    return attribute.split(".", 1)[0] in COLUMNS[kind]


def group_contents(backend: Backend, caller: Caller, owner: str | None, params: ListParams) -> Record:
    """The objects `owner` (a project or a user; default the caller) holds directly."""
    owner = owner or caller.user_uuid
    items: list[Record] = []
    available = 0
    for kind, chosen in CONTENT_KINDS:
        if not all(isinstance(f, list) and f and isinstance(f[0], str) and _has(kind, f[0]) for f in params.filters):
            continue  # a filter on what this kind lacks: none of this kind match
        filters = [*params.filters, ["owner_uuid", "=", owner], *chosen]
        order = [o for o in params.order if _has(kind, o.strip().split(" ")[0].split(".")[-1])]
        select = [s for s in params.select if s == "kind" or _has(kind, s)] if params.select else None
        page = backend.list(caller, kind, ListParams(
            filters=filters, order=order, select=select, include_trash=params.include_trash,
            offset=max(0, params.offset - available), limit=max(0, params.limit - len(items))))
        items.extend(page["items"])
        available += int(page.get("items_available", len(page["items"])))
    return {"kind": "arvados#objectList", "etag": "", "self_link": "", "offset": params.offset,
            "limit": params.limit, "items_available": available, "items": items, "included": []}


def shared_with(backend: Backend, caller: Caller, _owner: str | None, params: ListParams) -> Record:
    """Projects the caller may read that others own and that sit in no project the caller may
    read: the tops of what was shared with them (with their owners, as `included`). (`_owner`:
    the listings' common signature; this one is always the caller's.)"""
    projects: list[Record] = []
    offset = 0
    while True:
        page = backend.list(caller, "groups", ListParams(
            filters=[["group_class", "=", "project"], *params.filters], order=["uuid asc"], offset=offset,
            limit=1000))
        projects.extend(page["items"])
        offset += len(page["items"])
        if not page["items"] or offset >= int(page.get("items_available", offset)):
            break
    readable = {p["uuid"] for p in projects}
    tops = [p for p in projects if p["owner_uuid"] != caller.user_uuid and p["owner_uuid"] not in readable]
    window = tops[params.offset:params.offset + params.limit]
    owners: dict[str, Any] = {}
    for project in window:
        owner = project["owner_uuid"]
        if owner[6:11] == "tpzed" and owner not in owners:
            try:
                owners[owner] = backend.get(caller, "users", owner)
            except ArchipelagoError:  # an owner the caller may not see is simply not included
                continue
    return {"kind": "arvados#groupList", "etag": "", "self_link": "", "offset": params.offset,
            "limit": params.limit, "items_available": len(tops), "items": window,
            "included": list(owners.values())}
