"""Rows that several requests may be the first to write at once (a visitor's user, their token).

`INSERT ... ON CONFLICT DO NOTHING` on the primary key: whichever request inserts first wins, the
others insert nothing and read the winner's row (on PostgreSQL the loser's insert waits until the
winner commits; on SQLite writers are serialised). No request fails on the UNIQUE constraint.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def insert_missing(session: Session, model: Any, values: dict[str, Any]) -> Any:
    """The row of `model` whose primary key `values` name, inserted with `values` unless it exists
    (then left as it is); returned as this session's object, read after the insert."""
    dialect = session.get_bind().dialect.name
    if dialect not in INSERTS:
        raise NotImplementedError(f"no insert-or-ignore for {dialect} databases")
    table = model.__table__
    keys = [column.name for column in table.primary_key.columns]
    result: Any = session.execute(INSERTS[dialect](model).values(**values).on_conflict_do_nothing(index_elements=keys))
    if result.rowcount == 1 and "uuid" in values:  # ours: published as created (db/events.py keeps "create")
        session.info.setdefault("events", {})[(table.name, values["uuid"])] = \
            (table.name, values["uuid"], values.get("owner_uuid"), "create")
    return session.get(model, tuple(values[key] for key in keys) if len(keys) > 1 else values[keys[0]],
                       populate_existing=True)
