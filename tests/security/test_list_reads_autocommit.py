"""A list's session reads in AUTOCOMMIT on PostgreSQL (backend/local.py, db/unit.py). The isolation
level must not stay on the pooled connection: a later write session on it would commit each
statement on its own, and a write that fails half-way (a permission change, a collection and its
links) would be half done."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from archipelago.db.session import make_engine, session_factory
from archipelago.db.unit import Database


class _Signal:
    def bump(self) -> None:
        pass

    def version(self) -> int:
        return 0


def test_a_write_after_a_read_only_list_on_the_same_connection_is_still_atomic(postgres_server):
    url = postgres_server.create_database("t_attack_autocommit")
    engine = make_engine(url)  # one thread: the pool hands the same connection back each time
    db = Database(session_factory(engine), _Signal())  # type: ignore[arg-type]
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x int)"))
    for _ in range(3):
        with db.session(read_only=True) as session:
            session.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError), db.session() as session:
            session.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("a write that fails half-way")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 0
