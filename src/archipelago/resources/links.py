"""Links: typed edges between objects. Permission links (`can_read` < `can_write` < `can_manage`)
grant access to their head; making or changing one needs manage on that head, and seeing one
needs manage on its head or being its grantee (as in Arvados, a reader of an object does not learn
who else was granted what). Other links are seen by whoever can read their head."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, union_all
from sqlalchemy.orm import Session

from ..auth.permissions import MANAGE, READ, Permissions
from ..db.models import Collection, ContainerRequest, Group, Link, Workflow
from ..errors import Forbidden, Unprocessable
from ..ids import UUID_RE
from .base import Context, Resource

PERMISSION_NAMES = ("can_read", "can_write", "can_manage")
# the tables whose objects have an owner and can be shared: a permission link's head is one of them (or a user)
SHAREABLE: tuple[Any, ...] = (Collection, Group, Workflow, ContainerRequest)


def owned_by(owners: set[str]) -> Any:
    """The UUIDs of shareable objects these owners own (a subquery)."""
    return union_all(*(select(model.uuid).where(model.owner_uuid.in_(owners)) for model in SHAREABLE))


class Links(Resource):
    name = "links"
    class_name = "Link"
    model = Link
    writable = frozenset({"link_class", "name", "tail_uuid", "head_uuid", "properties", "owner_uuid"})
    can_own = True
    # who owns a link's head, as `allowed` finds it (ctx.owner_of): the registry's lookup, set by it
    owner_of: Callable[[Session, str], str | None]

    def visible(self, perms: Permissions, row: Any) -> bool:
        if row.link_class != "permission":
            return perms.can(READ, row.head_uuid, None) or super().visible(perms, row)
        if perms.is_admin or row.tail_uuid in perms.principals():
            return True
        return perms.can(MANAGE, row.head_uuid, self.owner_of(perms.session, row.head_uuid))

    def allowed(self, ctx: Context, row: Any, level: int) -> bool:
        if row.link_class == "permission":
            return ctx.perms.can(MANAGE, row.head_uuid, ctx.owner_of(row.head_uuid))
        return super().allowed(ctx, row, level)

    def readable_clause(self, perms: Permissions) -> ColumnElement[bool]:
        others = or_(super().readable_clause(perms),
                     Link.head_uuid.in_(perms.readable_owners() | perms.shared_objects()))
        grants = or_(Link.tail_uuid.in_(perms.principals()), Link.head_uuid.in_(perms.managed_objects()),
                     Link.head_uuid.in_(owned_by(perms.managed_owners())))
        return or_(and_(Link.link_class != "permission", others), and_(Link.link_class == "permission", grants))

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        if row is not None:
            attrs = {**{c: getattr(row, c) for c in ("link_class", "name", "tail_uuid", "head_uuid")}, **attrs}
        # Arvados tags and arv-keepdocker's image links have no tail; a permission needs one
        needed = ("link_class", "tail_uuid", "head_uuid") if attrs.get("link_class") == "permission" \
            else ("link_class", "head_uuid")
        for key in needed:
            if not attrs.get(key):
                raise Unprocessable(f"a link needs {key}")
        if attrs["link_class"] == "permission":
            if attrs.get("name") not in PERMISSION_NAMES:
                raise Unprocessable("a permission link's name is can_read, can_write or can_manage")
            for key in ("tail_uuid", "head_uuid"):
                if not UUID_RE.fullmatch(str(attrs[key])):
                    raise Unprocessable(f"a permission link's {key} must be a UUID, not {attrs[key]!r}")
            head = attrs["head_uuid"]
            if not ctx.perms.can(MANAGE, head, ctx.owner_of(head)):
                raise Forbidden(f"sharing {head} needs can_manage on it")
            for key in ("tail_uuid", "head_uuid"):  # after the check above: existence is not told to strangers
                if ctx.missing(attrs[key]):
                    raise Unprocessable(f"a permission link's {key} {attrs[key]} does not exist")
