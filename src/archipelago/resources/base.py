"""What a resource is, for the generic engine (backend/local.py): its model, which fields a client
may write, who may see and change its rows, and hooks for the rules only it has. A new resource
is one module with a subclass of `Resource`, added to resources/registry.py.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar

from sqlalchemy import ColumnElement, DateTime, or_, select
from sqlalchemy.orm import Mapped, Session

from ..auth.caller import Caller, Record
from ..auth.permissions import MANAGE, READ, WRITE, Permissions
from ..auth.residency import restricted_projects
from ..config import ClusterConfig
from ..db.models import Base
from ..errors import Forbidden, NotFound, Unprocessable
from ..ids import INFIX

MAX_NAME = 255  # Arvados' limit on a name
# fields every record may carry back from a client (they are the server's, and ignored)
SERVER_FIELDS = frozenset({"uuid", "kind", "etag", "created_at", "modified_at", "modified_by_user_uuid",
                           "can_write", "can_manage"})


@dataclass
class Context:
    """One operation of one caller: what a resource's rules may consult."""

    config: ClusterConfig
    session: Session
    caller: Caller
    perms: Permissions
    owner_lookup: Callable[[Session, str], str | None]  # the registry knows which table a UUID names
    renderer: Callable[[Any, list[str] | None], Record]  # a row as this caller sees it
    exists_lookup: Callable[[Session, str], bool | None] = lambda session, uuid: None

    def missing(self, uuid: str) -> bool:
        """An object of this cluster that does not exist (other clusters' objects cannot be judged here)."""
        return uuid[:5] == self.config.cluster_id and self.exists_lookup(self.session, uuid) is False

    def owner_of(self, uuid: str) -> str | None:
        return self.owner_lookup(self.session, uuid)

    def can_write_into(self, owner: str) -> bool:
        return owner == self.caller.user_uuid or self.perms.can(WRITE, owner, self.owner_of(owner))

    @property
    def outside(self) -> bool:
        """Is this reader outside the cluster: a request forwarded by a peer, or a visiting user (unless
        acting through a container running here: what a container reads stays on its cluster)?"""
        if self.caller.via is not None:
            return True
        return self.caller.user_uuid[:5] != self.config.cluster_id and self.caller.container_uuid is None

    @property
    def reader(self) -> str:
        return self.caller.user_uuid + (f" via cluster {self.caller.via}" if self.caller.via else "")

    @cached_property
    def restricted_projects(self) -> set[str]:
        """Projects under a residency policy (computed once per operation)."""
        return restricted_projects(self.session)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", dict: "an object",
              list: "an array", datetime: "a time"}


def json_type(value: Any) -> str:
    return {type(None): "null", bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)


def value_types(model: type[Base]) -> dict[str, tuple[tuple[type, ...], bool]]:
    """Each column's Python types and whether it may be null, from the model's annotations
    (`Mapped[str | None]` -> ((str,), True))."""
    found: dict[str, tuple[tuple[type, ...], bool]] = {}
    for name, hint in typing.get_type_hints(model).items():
        if typing.get_origin(hint) is not Mapped:
            continue
        (inner,) = typing.get_args(hint)
        options = typing.get_args(inner) if isinstance(inner, types.UnionType) else (inner,)
        concrete = tuple(typing.get_origin(t) or t for t in options if t is not type(None))
        if float in concrete:
            concrete = (*concrete, int)
        found[name] = (concrete, type(None) in options)
    return found


class Resource:
    name: ClassVar[str]  # the URL path segment (`api_client_authorizations`)
    class_name: ClassVar[str]  # Arvados' class name (`ApiClientAuthorization`): the kind and the UUID infix
    model: ClassVar[type[Base]]
    # set from class_name for each subclass: `arvados#apiClientAuthorization`, its UUID type infix, and
    # the key a create/update body wraps its attributes in (`api_client_authorization`)
    kind: ClassVar[str]
    infix: ClassVar[str]
    body_key: ClassVar[str]
    writable: ClassVar[frozenset[str]] = frozenset({"owner_uuid"})
    admin_only: ClassVar[frozenset[str]] = frozenset()
    hidden_in_lists: ClassVar[frozenset[str]] = frozenset()  # fields plain listings leave out
    # columns no list filter or order may name (422): write-only secrets and what is derived from
    # them; not rendering a field does not stop `like` or an order from answering guesses about it
    unfilterable: ClassVar[frozenset[str]] = frozenset()
    unique_names: ClassVar[bool] = False  # names unique per owner (ensure_unique_name applies)
    trashable: ClassVar[bool] = False  # delete moves to the trash; trash/untrash actions
    can_own: ClassVar[bool] = False  # its objects may own others or be shared
    echoed: ClassVar[frozenset[str]] = frozenset()  # read-only fields a client may send back (ignored)
    # a GET answers what the caller may do with the object (Arvados' can_write and can_manage on
    # projects and users: whether one may put things in it), so a client can check before it writes
    tells_rights: ClassVar[bool] = False
    # actions beyond CRUD on one object (`containers/{uuid}/lock`): name -> HTTP method
    object_actions: ClassVar[dict[str, str]] = {}
    actions: ClassVar[tuple[str, ...]] = ()  # extra API methods (discovery), e.g. "current"
    # what the federation router and the listings need to know, without a database:
    content_addressed: ClassVar[bool] = False  # objects can be asked for by content (PDH) as well as by UUID
    issued_by_login_cluster: ClassVar[bool] = False  # in a federation with a LoginCluster, only it creates these
    # the filters that choose which of its objects a project's contents lists (None: none of them);
    # groups.contents lists the kinds in RESOURCE_TYPES' order, as Arvados does
    project_contents: ClassVar[list[list[Any]] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "class_name" in cls.__dict__:
            cls.kind = f"arvados#{cls.class_name[0].lower()}{cls.class_name[1:]}"
            cls.infix = INFIX[cls.class_name]
            cls.body_key = cls.name[:-1]

    def __init__(self, config: ClusterConfig) -> None:
        self.config = config
        columns = self.model.__table__.columns
        self.columns = [c.key for c in columns]
        self.timestamp_columns = [c.key for c in columns if isinstance(c.type, DateTime)]
        self.value_types = value_types(self.model)

    @classmethod
    def runtime_token(cls, attrs: Record) -> tuple[list[str], float] | None:
        """For objects whose work runs as their requester: the scopes and lifetime (seconds) of the
        token from the requester's home that one made on another cluster carries (see
        federation/router.py). None: no such token."""
        return None

    def check_types(self, attrs: dict[str, Any]) -> None:
        """Each attribute a client writes has its column's type (a name is a string, properties an
        object): a wrong one is refused with the field named, never stored or left to the database.
        (null is left to the resource's rules and defaults, as Arvados clients send it freely.)"""
        for key, value in attrs.items():
            if _has_nul(value):  # PostgreSQL stores no NUL in text or JSON: refused here, not a 500 there
                raise Unprocessable(f"{self.name[:-1].replace('_', ' ')} {key} must not contain a NUL character")
            if key == "name" and isinstance(value, str) and len(value) > MAX_NAME:
                raise Unprocessable(f"{self.name[:-1].replace('_', ' ')} name is {len(value)} characters long; "
                                    f"at most {MAX_NAME} (as in Arvados)")
            allowed, nullable = self.value_types.get(key, ((object,), True))
            if value is None or (isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))):
                continue
            expected = " or ".join(TYPE_NAMES.get(t, t.__name__) for t in allowed)
            raise Unprocessable(f"{self.name[:-1].replace('_', ' ')} {key} must be "
                                f"{expected}{' or null' if nullable else ''}, not {json_type(value)}")

    # ---------------------------------------------------------------- who sees and changes what
    def visible(self, perms: Permissions, row: Any) -> bool:
        return perms.can(READ, row.uuid, row.owner_uuid)

    def allowed(self, ctx: Context, row: Any, level: int) -> bool:
        return ctx.perms.can(level, row.uuid, row.owner_uuid)

    def readable_clause(self, perms: Permissions) -> ColumnElement[bool]:
        """A WHERE clause selecting the rows `perms` may read (for lists)."""
        model: Any = self.model
        owners, shared = perms.readable_owners(), perms.shared_objects()
        parts = [model.owner_uuid.in_(owners)]
        if shared:  # an empty IN () inside an OR keeps the planner from using indexes
            parts.append(model.uuid.in_(shared))
        return parts[0] if len(parts) == 1 else or_(*parts)

    def readable_changes(self, perms: Permissions, changes: list[Record]) -> list[Record]:
        """Of changes to this resource's objects (the change stream: `uuid`, `owner_uuid` as
        committed, `event_type`), those `perms` may hear of, by GET's rule (`visible`). The owner's
        rule needs no query: the change carries the owner, deleted or not. Any other rule is judged
        on the rows as they are now, one query a batch; a deleted row, gone, is then heard of by
        admins only (who could read it before cannot be told)."""
        if perms.is_admin:
            return changes
        if type(self).visible is Resource.visible:
            return [c for c in changes if perms.can(READ, c["uuid"], c["owner_uuid"])]
        model: Any = self.model
        live = {c["uuid"] for c in changes if c["event_type"] != "delete"}
        rows = {row.uuid: row for row in perms.session.scalars(select(model).where(model.uuid.in_(live)))}
        return [c for c in changes if c["event_type"] != "delete" and c["uuid"] in rows
                and self.visible(perms, rows[c["uuid"]])]

    def owner_for_create(self, ctx: Context, requested: str | None) -> str:
        owner = requested or ctx.caller.user_uuid
        if not ctx.can_write_into(owner):
            raise Forbidden(f"you cannot write into {owner}")
        return owner

    # ---------------------------------------------------------------- hooks
    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        """Refuse attributes this resource cannot take (row is None on create)."""

    def derived_fields(self, ctx: Context, attrs: dict[str, Any], owner: str, row: Any | None = None) -> dict[str, Any]:
        """Fields computed from what the client sent (row is None on create); may consume attrs."""
        return {}

    def check_delete(self, ctx: Context, row: Any) -> None:
        """Refuse to delete a row that must stay (a committed container request)."""

    def after_write(self, ctx: Context, row: Any, before: dict[str, Any] | None) -> None:
        """Consequences of a create (before is None) or an update (before: the old values of the
        fields that were sent), in the same transaction."""

    def act(self, ctx: Context, action: str, row: Any, params: dict[str, Any]) -> Record | None:
        """Run one of `object_actions` on a row; None renders the row."""
        raise NotFound(f"no such action {action!r}")

    def lookup(self, ctx: Context, key: str, select_: list[str] | None) -> Record | None:
        """An answer for a `get` key that is not a UUID (a collection's PDH), else None."""
        return None

    def rights(self, ctx: Context, row: Any) -> Record:
        """can_write and can_manage of this caller on the row, where the resource tells them."""
        if not self.tells_rights:
            return {}
        return {"can_write": ctx.can_write_into(row.uuid),
                "can_manage": ctx.caller.is_admin or row.uuid == ctx.caller.user_uuid
                or ctx.perms.can(MANAGE, row.uuid, row.owner_uuid)}

    def guard_read(self, ctx: Context, row: Any) -> None:
        """Raise if this caller may see the row's metadata but not read it whole (residency)."""

    def unfilterable_for(self, ctx: Context) -> frozenset[str]:
        """The columns this caller's filters and orders may not name: `unfilterable`, and whatever
        `redact_listing` may hide from them (a filter would read it back)."""
        return self.unfilterable

    def redact_listing(self, ctx: Context, rows: list[Any], items: list[Record]) -> None:
        """Remove from listed items what this caller may not read (judged on the rows)."""

    def render_extra(self, out: Record, row: Any, caller: Caller | None, wanted: set[str] | None,
                     listing: bool) -> None:
        """Add the fields that are not columns (Arvados' computed fields)."""

    def current(self, session: Session, caller: Caller, render: Callable[[Any], Record]) -> Record:
        """The caller's own object of this resource (`users/current`), rendered by `render`."""
        raise NotFound(f"no {self.name}/current")

    def owner_query(self, uuid: str) -> Any:
        model: Any = self.model
        return select(model.owner_uuid).where(model.uuid == uuid)
