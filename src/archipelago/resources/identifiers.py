"""Identifiers: the DOIs, ARKs, URNs, URLs, compact ids, drs:// and keep: URIs a collection or a
project carries. Each is stored in its normal form (resolver/identifiers.py), so any spelling finds
it; a malformed one is a 422 naming the rule. An identifier is as readable as the object it names
and changed by those who may write that object. `published` identifiers are told to the
federation's resolvers; the others resolve only here, for readers of the object."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, or_, select

from ..auth.permissions import READ, WRITE, Permissions
from ..db.models import Collection, Group, Identifier
from ..db.outbox import identifier_key, note
from ..errors import Unprocessable
from ..ids import INFIX, UUID_RE
from ..resolver.identifiers import parse_identifier
from .base import Context, Resource

HEADS = {INFIX["Collection"]: Collection, INFIX["Group"]: Group}


def head_owner(session: Any, head_uuid: str) -> str | None:
    model: Any = HEADS.get(head_uuid[6:11])
    return None if model is None else session.scalar(select(model.owner_uuid).where(model.uuid == head_uuid))


class Identifiers(Resource):
    name = "identifiers"
    class_name = "Identifier"
    model = Identifier
    writable = frozenset({"head_uuid", "identifier", "published"})

    def visible(self, perms: Permissions, row: Any) -> bool:
        return perms.can(READ, row.head_uuid, head_owner(perms.session, row.head_uuid))

    def allowed(self, ctx: Context, row: Any, level: int) -> bool:
        return ctx.perms.can(level, row.head_uuid, head_owner(ctx.session, row.head_uuid))

    def readable_clause(self, perms: Permissions) -> ColumnElement[bool]:
        owners, shared = perms.readable_owners(), perms.shared_objects()
        collections = select(Collection.uuid).where(
            or_(Collection.owner_uuid.in_(owners), *([Collection.uuid.in_(shared)] if shared else [])))
        return or_(Identifier.head_uuid.in_(owners | shared), Identifier.head_uuid.in_(collections))

    def owner_for_create(self, ctx: Context, requested: str | None) -> str:
        return ctx.caller.user_uuid  # replaced by the owner of the object it names (derived_fields)

    def validate(self, ctx: Context, attrs: dict[str, Any], row: Any | None = None) -> None:
        if row is not None:
            if "head_uuid" in attrs and attrs["head_uuid"] != row.head_uuid:
                raise Unprocessable("an identifier's head_uuid cannot change: remove it and add it to the other object")
            return
        head = attrs.get("head_uuid")
        if not isinstance(head, str) or not UUID_RE.fullmatch(head) or head[6:11] not in HEADS:
            raise Unprocessable(f"head_uuid must be the UUID of a collection or a project, not {head!r}")
        if head[:5] != self.config.cluster_id:
            raise Unprocessable(f"head_uuid {head} is not on this cluster: add identifiers where the object lives")
        owner = head_owner(ctx.session, head)
        if owner is None or not ctx.perms.can(READ, head, owner):
            raise Unprocessable(f"head_uuid {head}: no such collection or project")
        if head[6:11] == INFIX["Group"] and ctx.session.scalar(select(Group.group_class).where(
                Group.uuid == head)) != "project":
            raise Unprocessable(f"head_uuid {head} is a group but not a project")
        if not ctx.perms.can(WRITE, head, owner):
            raise Unprocessable(f"you may read {head} but not change it, so not give it identifiers")
        if "identifier" not in attrs:
            raise Unprocessable("an identifier needs 'identifier' (a DOI, ARK, URN, URL, compact id, drs:// or keep:)")

    def derived_fields(self, ctx: Context, attrs: dict[str, Any], owner: str, row: Any | None = None) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "identifier" in attrs:
            parsed = parse_identifier(attrs["identifier"])
            attrs["identifier"] = parsed.text
            fields["scheme"] = parsed.scheme
        if row is None:
            fields["owner_uuid"] = head_owner(ctx.session, attrs["head_uuid"])
        return fields

    def after_write(self, ctx: Context, row: Any, before: dict[str, Any] | None) -> None:
        note(ctx.session, identifier_key(row.identifier),
             identifier_key(before["identifier"]) if before and before.get("identifier") else None)

    def check_delete(self, ctx: Context, row: Any) -> None:
        note(ctx.session, identifier_key(row.identifier))  # withdrawn from the resolvers with this transaction
