"""API tokens (`api_client_authorizations`): a user sees and revokes their own; admins any. The
secret is made here, never by the client. A token made through the API is bound to the token that
made it (auth/identity.py `issuing_parent`): it never expires later, and dies with it; and no token
is given scopes wider than those of the token that makes or changes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from ..auth.caller import Caller, Record
from ..auth.identity import bound_expiry, expired, issuing_parent
from ..auth.permissions import Permissions
from ..db.models import ApiClientAuthorization
from ..errors import Forbidden, Unprocessable
from ..formats.tokens import new_secret, secret_of
from ..times import aware, now, timestamp
from .base import Context, Resource


def covered(scope: Any, by: tuple[str, ...]) -> bool:
    """Does a token with scopes `by` already allow what `scope` would (api/app.py `scope_allows`)?"""
    if "all" in by:
        return True
    return isinstance(scope, str) and any(scope == mine or (mine.endswith("/") and scope.startswith(mine))
                                          for mine in by)


class Tokens(Resource):
    name = "api_client_authorizations"
    class_name = "ApiClientAuthorization"
    issued_by_login_cluster = True
    model = ApiClientAuthorization
    writable = frozenset({"expires_at", "scopes", "owner_uuid"})
    unfilterable = frozenset({"api_token"})  # the secret: shown to its user, never searched for
    actions = ("current",)

    def visible(self, perms: Permissions, row: Any) -> bool:
        return perms.is_admin or row.user_uuid == perms.user_uuid

    def allowed(self, ctx: Context, row: Any, level: int) -> bool:
        return self.visible(ctx.perms, row)

    def readable_clause(self, perms: Permissions) -> ColumnElement[bool]:
        return ApiClientAuthorization.user_uuid == perms.user_uuid

    def owner_for_create(self, ctx: Context, requested: str | None) -> str:
        return (requested or ctx.caller.user_uuid) if ctx.caller.is_admin else ctx.caller.user_uuid

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        expires = attrs.get("expires_at")
        if row is None and expires is not None and aware(expires) <= now():
            raise Unprocessable(f"a new token cannot expire in the past ({timestamp(aware(expires))})")
        revived = expires is None or aware(expires) > now()
        if row is not None and "expires_at" in attrs and expired(row) and revived:
            # a finished container's token (and what it made) must stay dead: revoked is revoked
            raise Unprocessable(f"token {row.uuid} has expired and stays so; make a new one")
        wider = [scope for scope in attrs.get("scopes") or () if not covered(scope, ctx.caller.scopes)]
        if wider:  # a restricted token (a runtime token, a read-only one) cannot mint its way out
            raise Forbidden(f"this token's scopes do not allow {', '.join(map(str, wider))}")

    def derived_fields(self, ctx: Context, attrs: dict[str, Any], owner: str, row: Any | None = None) -> dict[str, Any]:
        if row is not None:
            if "expires_at" in attrs and row.parent_uuid is not None:
                parent = ctx.session.get(ApiClientAuthorization, row.parent_uuid)
                return {"expires_at": bound_expiry(attrs["expires_at"], parent)}
            return {}
        parent = issuing_parent(ctx.session, ctx.caller, owner)
        return {"user_uuid": owner, "api_token": new_secret(),
                "scopes": attrs.pop("scopes", None) or list(ctx.caller.scopes),  # by default, the maker's
                "parent_uuid": parent.uuid if parent is not None else None,
                "expires_at": bound_expiry(attrs.get("expires_at"), parent)}

    def render_extra(self, out: Record, row: Any, caller: Caller | None, wanted: set[str] | None,
                     listing: bool) -> None:
        out["full_name"] = None

    def current(self, session: Session, caller: Caller, render: Callable[[Any], Record]) -> Record:
        row = session.get(ApiClientAuthorization, caller.authorization_uuid)
        if row is None:  # the system root token has no row
            stamp = timestamp(now())
            return {"kind": self.kind, "uuid": caller.authorization_uuid, "owner_uuid": caller.user_uuid,
                    "user_uuid": caller.user_uuid, "scopes": ["all"], "expires_at": None, "created_at": stamp,
                    "modified_at": stamp}
        out = render(row)
        out["api_token"] = secret_of(caller.token)
        return out
