"""Users: everyone sees everyone (Arvados' "All users" group); only admins create them or change
another user, and only admins set the admin and active flags."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from ..auth.caller import Caller, Record
from ..auth.permissions import Permissions
from ..db.models import User
from ..errors import Forbidden, NotFound
from .base import Context, Resource


class Users(Resource):
    name = "users"
    class_name = "User"
    issued_by_login_cluster = True
    model = User
    writable = frozenset({"email", "username", "first_name", "last_name", "is_admin", "is_active", "prefs",
                          "owner_uuid"})
    admin_only = frozenset({"is_admin", "is_active"})
    actions = ("current",)
    tells_rights = True  # whether one may put things in this user's home project

    def visible(self, perms: Permissions, row: Any) -> bool:
        return True

    def allowed(self, ctx: Context, row: Any, level: int) -> bool:
        return ctx.perms.is_admin or row.uuid == ctx.perms.user_uuid

    def readable_clause(self, perms: Permissions) -> ColumnElement[bool]:
        return User.uuid.is_not(None)

    def owner_for_create(self, ctx: Context, requested: str | None) -> str:
        if not ctx.caller.is_admin:
            raise Forbidden("only admins create users")
        return self.config.system_user_uuid

    def render_extra(self, out: Record, row: Any, caller: Caller | None, wanted: set[str] | None,
                     listing: bool) -> None:
        out["full_name"] = " ".join(p for p in (row.first_name, row.last_name) if p)
        out["is_invited"] = row.is_active

    def current(self, session: Session, caller: Caller, render: Callable[[Any], Record]) -> Record:
        user = session.get(User, caller.user_uuid)
        if user is None:
            raise NotFound("current user not found")
        return render(user)
