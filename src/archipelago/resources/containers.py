"""Containers: what runs. Only the cluster's dispatcher (an admin) creates, locks and finishes
them; a container's own token may report its runtime_status, progress and output; users see the
containers of the requests they can read."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import ColumnElement, or_, select

from ..auth.caller import Caller, Record
from ..auth.permissions import READ, Permissions
from ..db.models import ApiClientAuthorization, Container, ContainerRequest
from ..errors import Forbidden, NotFound, Unprocessable
from .base import Context, Resource
from .container_requests import lifecycle

MAX_DISPATCH_ATTEMPTS = 10
# what a container may say of itself
SELF_UPDATABLE = frozenset({"runtime_status", "progress", "output", "output_properties"})
WRITE_ONLY = ("secret_mounts", "runtime_token")


def is_itself(ctx: Context, row: Any) -> bool:
    return bool(ctx.caller.authorization_uuid) and row.auth_uuid == ctx.caller.authorization_uuid


class Containers(Resource):
    name = "containers"
    class_name = "Container"
    model = Container
    writable = frozenset({"state", "log", "output", "progress", "exit_code", "runtime_status", "cost", "priority",
                          "output_properties"})
    echoed = frozenset({"gateway_address", "interactive_session_started", "subrequests_cost"})
    actions = ("current",)
    # reuse_key holds the md5 of the secret mounts; auth_uuid names the container's own token
    unfilterable = frozenset({*WRITE_ONLY, "auth_uuid", "reuse_key"})
    object_actions: ClassVar[dict[str, str]] = {"lock": "POST", "unlock": "POST", "auth": "GET", "secret_mounts": "GET",
                      "update_priority": "POST"}

    def visible(self, perms: Permissions, row: Any) -> bool:
        if perms.is_admin:
            return True
        requests = perms.session.execute(select(ContainerRequest.uuid, ContainerRequest.owner_uuid)
                                         .where(ContainerRequest.container_uuid == row.uuid))
        return any(perms.can(READ, uuid, owner) for uuid, owner in requests)

    def readable_changes(self, perms: Permissions, changes: list[Record]) -> list[Record]:
        """`visible` for a batch of changes: the requests of all the containers in one query.
        (Containers are never deleted; a deletion would be heard of by admins only.)"""
        if perms.is_admin:
            return changes
        requests = perms.session.execute(
            select(ContainerRequest.container_uuid, ContainerRequest.uuid, ContainerRequest.owner_uuid)
            .where(ContainerRequest.container_uuid.in_({c["uuid"] for c in changes})))
        readable = {container for container, uuid, owner in requests if perms.can(READ, uuid, owner)}
        return [c for c in changes if c["event_type"] != "delete" and c["uuid"] in readable]

    def allowed(self, ctx: Context, row: Any, level: int) -> bool:
        return ctx.caller.is_admin or is_itself(ctx, row)

    def readable_clause(self, perms: Permissions) -> ColumnElement[bool]:
        mine = select(ContainerRequest.container_uuid).where(ContainerRequest.owner_uuid.in_(perms.readable_owners()))
        return or_(Container.uuid.in_(mine), Container.runtime_user_uuid == perms.user_uuid)

    def owner_for_create(self, ctx: Context, requested: str | None) -> str:
        raise Forbidden("containers are made by committing container requests")

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        assert row is not None  # never created through the API (owner_for_create refuses)
        if not ctx.caller.is_admin and (refused := sorted(set(attrs) - SELF_UPDATABLE)):
            raise Forbidden(f"a container may only update its own {', '.join(sorted(SELF_UPDATABLE))}, "
                            f"not {', '.join(refused)}")
        if "state" in attrs:
            lifecycle(ctx).check_container_update(row, attrs["state"])
        if attrs.get("output") not in (None, row.output):
            lifecycle(ctx).check_output(attrs["output"])  # judged with the caller's (its own token's) permissions
        if attrs.get("state") == "Complete" and attrs.get("exit_code", row.exit_code) is None:
            raise Unprocessable("a Complete container needs its exit_code")

    def after_write(self, ctx: Context, row: Any, before: dict[str, Any] | None) -> None:
        if before and "state" in before:
            lifecycle(ctx).state_changed(row, before["state"])

    def check_delete(self, ctx: Context, row: Any) -> None:
        raise Forbidden("containers are not deleted")

    def lookup(self, ctx: Context, key: str, select_: list[str] | None) -> Record | None:
        if key != "current":
            return None
        row = ctx.session.scalar(select(Container).where(Container.auth_uuid == ctx.caller.authorization_uuid))
        if row is None or not ctx.caller.authorization_uuid:
            raise NotFound("this token is not a container's token")
        return ctx.renderer(row, select_)

    def act(self, ctx: Context, action: str, row: Any, params: dict[str, Any]) -> Record | None:
        if action == "secret_mounts":
            if not (ctx.caller.is_admin or is_itself(ctx, row)):
                raise Forbidden("only the container itself and the dispatcher read its secret mounts")
            return {"secret_mounts": row.secret_mounts or {}}
        if not ctx.caller.is_admin:
            raise Forbidden(f"only the dispatcher may {action} a container")
        cycle = lifecycle(ctx)
        if action == "lock":
            if row.state != "Queued" or row.priority <= 0:
                raise Unprocessable(f"container {row.uuid} is {row.state} with priority {row.priority}: "
                                    "only a Queued container with priority > 0 can be locked")
            cycle.container_changed(row, "Locked")
            row.locked_by_uuid, row.lock_count = ctx.caller.authorization_uuid, row.lock_count + 1
        elif action == "unlock":
            if row.state != "Locked":
                raise Unprocessable(f"container {row.uuid} is {row.state}, not Locked")
            if row.lock_count >= MAX_DISPATCH_ATTEMPTS:
                row.runtime_status = {**(row.runtime_status or {}),
                                      "error": f"dispatch failed {row.lock_count} times"}
                cycle.container_changed(row, "Cancelled")
            else:
                cycle.container_changed(row, "Queued")
        elif action == "auth":
            token = ctx.session.get(ApiClientAuthorization, row.auth_uuid)
            if token is None:
                raise NotFound(f"container {row.uuid} has no token")
            # runtime_token: the requester's home's token, for what lives on other clusters
            return {"kind": "arvados#apiClientAuthorization", "uuid": token.uuid, "api_token": token.api_token,
                    "scopes": token.scopes, "user_uuid": token.user_uuid, "runtime_token": row.runtime_token,
                    "expires_at": token.expires_at.isoformat() if token.expires_at else None}
        elif action == "update_priority":
            cycle.update_priority(row)
        return None

    def render_extra(self, out: Record, row: Any, caller: Caller | None, wanted: set[str] | None,
                     listing: bool) -> None:
        for key in WRITE_ONLY:
            out.pop(key, None)
        out.pop("reuse_key", None)
