"""Noting, in the writer's own transaction, what resolvers must hear of (models.RegistryChange): the
keys only; the pusher reads their state when it pushes (resolver/registrations.py), so a key noted
twice is sent once and a push retried after a failure sends the state as it is then."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .models import Identifier, RegistryChange


def identifier_key(identifier: str) -> str:
    return f"id:{identifier}"


def content_key(pdh: str) -> str:
    return f"pdh:{pdh}"


def note(session: Session, *keys: str | None) -> None:
    rows = [{"key": key} for key in dict.fromkeys(keys) if key]
    if rows:
        session.execute(insert(RegistryChange), rows)


def note_head(session: Session, head_uuid: str, *extra: str | None) -> None:
    """A collection or project changed (content, residency, trash): every identifier it carries."""
    carried = session.scalars(select(Identifier.identifier).where(Identifier.head_uuid == head_uuid))
    note(session, *extra, *(identifier_key(i) for i in carried))
