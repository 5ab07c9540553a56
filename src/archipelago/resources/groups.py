"""Groups: projects (which own objects and pass permissions down), roles (whose members share
their grants) and filter groups."""

from __future__ import annotations

from typing import Any, ClassVar

from ..auth.residency import check_policy
from ..db.models import Group
from ..db.outbox import note_head
from ..errors import Unprocessable
from .base import Context, Resource

GROUP_CLASSES = ("project", "role", "filter")


class Groups(Resource):
    name = "groups"
    class_name = "Group"
    project_contents: ClassVar[list[list[Any]] | None] = [["group_class", "in", ["project", "filter"]]]
    model = Group
    writable = frozenset({"name", "description", "group_class", "properties", "owner_uuid", "trash_at", "delete_at",
                          "residency"})
    admin_only = frozenset({"residency"})
    unique_names = trashable = can_own = tells_rights = True
    actions = ("contents", "shared")  # lists across kinds (backend/contents.py)

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        check_policy(attrs)
        if row is None:
            if attrs.get("group_class", "project") not in GROUP_CLASSES:
                raise Unprocessable("group_class must be project, role or filter")
            if not attrs.get("name"):
                raise Unprocessable("a group needs a name")

    def after_write(self, ctx: Context, row: Any, before: dict[str, Any] | None) -> None:
        if before is not None:  # renamed, moved, trashed, its residency changed: what resolvers know of it
            note_head(ctx.session, row.uuid)
