"""Container requests: what a user asks to run. Committing one finds or queues its container
(compute/lifecycle.py); secret_mounts and runtime_token are write-only."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import select

from ..auth.caller import Caller, Record
from ..compute.access import Access
from ..compute.lifecycle import Lifecycle
from ..compute.validation import FIELD_CHECKS, check_committable, check_fields
from ..db.models import Container, ContainerRequest
from ..errors import Forbidden, Unprocessable
from .base import Context, Resource

WRITE_ONLY = ("secret_mounts", "runtime_token")
# a request made on another cluster carries a runtime token from the requester's home (federation/router.py):
# better than Arvados' two-week full-power token, one that lives as long as the work may run (plus a
# margin) and can only read collections and the caller's identity, and save outputs and logs
RUNTIME_TOKEN_SCOPES = ["GET /arvados/v1/collections/", "GET /arvados/v1/collections",
                        "POST /arvados/v1/collections", "POST /arvados/v1/collections/",
                        "GET /arvados/v1/users/current", "GET /arvados/v1/keep_services/accessible"]
RUNTIME_TOKEN_MARGIN_SECONDS = 3600
DEFAULT_RUN_SECONDS = 86400


def lifecycle(ctx: Context) -> Lifecycle:
    """The lifecycle acting for this caller: what they commit is judged with their permissions."""
    peers = frozenset(ctx.config.remote_clusters)
    return Lifecycle(ctx.config, ctx.session, Access(ctx.session, ctx.perms, ctx.config.cluster_id, peers))


def calling_container(ctx: Context) -> Container | None:
    """The container whose own token this caller presents, if any."""
    if not ctx.caller.authorization_uuid:
        return None
    found: Container | None = ctx.session.scalar(select(Container).where(
        Container.auth_uuid == ctx.caller.authorization_uuid, Container.state.in_(("Locked", "Running"))))
    return found


def require_full_scope(caller: Caller) -> None:
    """A committed request gets a container that acts as its committer with a token of scope "all"
    (it must read its inputs and save its output, whatever they are). A narrower token committing
    one would widen itself through that container, so it may not: 403, saying why."""
    if "all" not in caller.scopes:
        raise Forbidden("committing a container request needs a token with scope 'all': its container acts "
                        f"as you with full access, more than this token's scopes allow ({', '.join(caller.scopes)})")


class ContainerRequests(Resource):
    name = "container_requests"
    class_name = "ContainerRequest"
    project_contents: ClassVar[list[list[Any]] | None] = []
    model = ContainerRequest
    writable = frozenset({"name", "description", "properties", "state", "container_count_max", "mounts",
                          "secret_mounts", "runtime_constraints", "scheduling_parameters", "container_image",
                          "environment", "cwd", "command", "output_path", "output_glob", "output_name", "output_ttl",
                          "output_properties", "output_storage_classes", "priority", "expires_at", "use_existing",
                          "runtime_token", "owner_uuid", "cumulative_cost", "container_uuid",
                          "requesting_container_uuid"})
    echoed = frozenset({"container_count", "log_uuid", "output_uuid", "filters", "runtime_user_uuid",
                        "runtime_auth_scopes", "service", "published_ports", "href"})
    can_own = True
    unfilterable = frozenset(WRITE_ONLY)
    object_actions: ClassVar[dict[str, str]] = {"container_status": "GET"}

    @classmethod
    def runtime_token(cls, attrs: Record) -> tuple[list[str], float] | None:
        run_seconds = (attrs.get("scheduling_parameters") or {}).get("max_run_time") or DEFAULT_RUN_SECONDS
        return RUNTIME_TOKEN_SCOPES, run_seconds + RUNTIME_TOKEN_MARGIN_SECONDS

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        for key in [k for k, v in attrs.items() if v is None and not self.value_types.get(k, ((), True))[1]]:
            del attrs[key]  # null where a value is needed: the default on create, unchanged on update
        attrs.pop("requesting_container_uuid", None)
        if row is None:
            if attrs.get("state", "Uncommitted") not in ("Uncommitted", "Committed"):
                raise Unprocessable("a container request is created Uncommitted or Committed")
            attrs.pop("container_uuid", None)
            if (parent := calling_container(ctx)) is not None:
                attrs["requesting_container_uuid"] = parent.uuid
        else:
            if attrs.get("container_uuid") not in (None, row.container_uuid) and not ctx.caller.is_admin:
                raise Unprocessable("container_uuid can only be reset to null")
            lifecycle(ctx).check_request_update(row, attrs)
        if attrs.get("state") == "Committed" and (row is None or row.state == "Uncommitted"):
            require_full_scope(ctx.caller)
            # committing: the whole request as it will run (also what an older version let in)
            spec = {k: attrs[k] if k in attrs else getattr(row, k, None) for k in FIELD_CHECKS}
            check_fields(spec)
            check_committable(spec)
        else:  # a value sent back unchanged (the official runner re-sends the whole body) was judged when set
            check_fields({k: v for k, v in attrs.items() if row is None or getattr(row, k, None) != v})

    def after_write(self, ctx: Context, row: Any, before: dict[str, Any] | None) -> None:
        was = "Uncommitted" if before is None else before.get("state", row.state)
        if row.state == "Committed" and was == "Uncommitted":
            lifecycle(ctx).commit(row, calling_container(ctx))
        elif row.state == "Committed" and before and "priority" in before and row.container_uuid:
            container = ctx.session.get(Container, row.container_uuid)
            if container is not None:
                lifecycle(ctx).update_priority(container)

    def check_delete(self, ctx: Context, row: Any) -> None:
        if row.state == "Committed":
            raise Unprocessable("a committed container request cannot be deleted: set its priority to 0 to cancel it")

    def act(self, ctx: Context, action: str, row: Any, params: dict[str, Any]) -> Record | None:
        container = ctx.session.get(Container, row.container_uuid) if row.container_uuid else None
        return {"uuid": row.uuid, "state": row.state, "container_uuid": row.container_uuid,
                "container_state": container.state if container else None,
                "scheduling_status": {"Queued": "waiting for a dispatcher", "Locked": "starting",
                                      "Running": "running"}.get(container.state if container else "", "")}

    def render_extra(self, out: Record, row: Any, caller: Caller | None, wanted: set[str] | None,
                     listing: bool) -> None:
        for key in WRITE_ONLY:
            out.pop(key, None)
