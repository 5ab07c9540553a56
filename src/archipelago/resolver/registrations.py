"""What this site tells its resolvers (the site side of registration): the changes noted after a
resolver's acknowledged position in the change cursor (db/outbox.py), each key with its state now —
a published identifier with the objects carrying it here, a PDH held or no longer held. The same
batch is pushed by the site (pusher.py) or read by a resolver's poll (`/_resolver/feed`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..auth.residency import restricted_projects
from ..db.models import Collection, Group, Identifier, RegistryChange

Sessions = Callable[[], AbstractContextManager[Session]]
CHUNK = 500


def _chunks(items: list[str]) -> list[list[str]]:
    return [items[n:n + CHUNK] for n in range(0, len(items), CHUNK)]


def last_seq(sessions: Sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.max(RegistryChange.seq))) or 0


def changes_after(sessions: Sessions, after: int, limit: int = 5000) -> dict[str, Any]:
    """The batch after `after`: {after, to, identifiers: {id: [objects]}, contents: {pdh: held}, more}."""
    with sessions() as session:
        rows = session.execute(select(RegistryChange.seq, RegistryChange.key).where(RegistryChange.seq > after)
                               .order_by(RegistryChange.seq).limit(limit)).all()
        keys = list(dict.fromkeys(key for _, key in rows))
        pdhs = [k[4:] for k in keys if k.startswith("pdh:")]
        idents = [k[3:] for k in keys if k.startswith("id:")]
        held: set[str] = set()
        for part in _chunks(pdhs):
            held.update(session.scalars(select(Collection.portable_data_hash).where(
                Collection.portable_data_hash.in_(part), Collection.is_trashed.is_(False)).distinct()))
        return {"after": after, "to": rows[-1][0] if rows else after, "more": len(rows) == limit,
                "contents": {pdh: pdh in held for pdh in pdhs},
                "identifiers": _published(session, idents) if idents else {}}


def _published(session: Session, idents: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Each identifier with the objects here that carry it published (none: withdrawn here)."""
    found: dict[str, list[dict[str, Any]]] = {ident: [] for ident in idents}
    rows = [row for part in _chunks(idents) for row in session.scalars(select(Identifier).where(
        Identifier.identifier.in_(part), Identifier.published.is_(True)))]
    heads = {row.head_uuid for row in rows}
    collections = {c.uuid: c for c in session.scalars(select(Collection).where(
        Collection.uuid.in_(heads), Collection.is_trashed.is_(False)))}
    projects = {g.uuid: g for g in session.scalars(select(Group).where(
        Group.uuid.in_(heads), Group.is_trashed.is_(False)))}
    restricted = restricted_projects(session) if rows else set()
    for row in rows:
        if (c := collections.get(row.head_uuid)) is not None:
            policy = c.residency or ("cluster" if c.owner_uuid in restricted else None)
            found[row.identifier].append({"uuid": c.uuid, "kind": "collection", "name": c.name,
                                          "pdh": c.portable_data_hash, "size": c.file_size_total,
                                          "residency": policy})
        elif (g := projects.get(row.head_uuid)) is not None:
            found[row.identifier].append({"uuid": g.uuid, "kind": "project", "name": g.name, "pdh": None,
                                          "size": None, "residency": "cluster" if g.uuid in restricted else None})
    return found
