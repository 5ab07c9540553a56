"""Engines, sessions and schema migrations."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

import orjson
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from .block_index import follow_manifests

MIGRATIONS = Path(__file__).parent / "migrations"
WRITE_LISTENERS = (follow_manifests,)  # registered on every Session by importing them


def _owner_only_sqlite(url: str) -> None:
    """A SQLite database holds every token: its file is made, or kept, readable by its owner alone,
    whatever the umask of the process that opens it first. SQLite gives the -wal and -shm files it
    makes the database file's mode; ones an older version left open are closed too."""
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return
    path = Path(url[len("sqlite:///"):])
    if not path.parent.is_dir():
        return  # SQLite will say what is wrong
    with contextlib.suppress(FileExistsError, PermissionError):  # SQLite takes an empty file as an empty database
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError, PermissionError):  # another owner's: theirs to decide
            if file.stat().st_mode & 0o077:
                file.chmod(0o600)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        _owner_only_sqlite(url)
        # a pool as large as the API's worker threads: a connection opened per request costs more
        # than the query (the pragmas run on each)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               pool_size=40, max_overflow=10, json_deserializer=orjson.loads)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            # LIKE is case-sensitive in Arvados (PostgreSQL); this also lets prefix patterns use indexes
            cursor.execute("PRAGMA case_sensitive_like=ON")
            # reads straight from the OS page cache instead of copying pages into each connection's
            # own small cache (the API keeps dozens of connections open)
            cursor.execute("PRAGMA mmap_size=1073741824")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.close()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    engine = create_engine(url, pool_size=20, max_overflow=10, json_deserializer=orjson.loads)
    _ping_when_idle(engine)
    return engine


IDLE_PING_SECONDS = 1.0


def _ping_when_idle(engine: Engine) -> None:
    """A pooled connection idle for a while is asked whether it still works before it is used (a
    restarted server leaves the pool's connections dead); one in use moments ago is not. A ping on
    every checkout (pool_pre_ping) was one of a small list's four round trips. A connection found
    dead is replaced; the first error on one that died in use marks the whole pool for renewal."""

    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        record.info["returned"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if time.monotonic() - record.info.setdefault("returned", time.monotonic()) < IDLE_PING_SECONDS:
            return  # used moments ago, or just opened
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(f"a pooled connection no longer works: {exc}") from None


def migrate(engine: Engine, revision: str = "heads") -> None:
    """Bring the schema to `revision` (idempotent). "heads": every branch of the history (features
    developed side by side number their migrations in ranges of their own, each branching from the
    revision it was written against)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def refresh_statistics(engine: Engine) -> None:
    """Give the query planner row statistics. Without them SQLite guesses, and with 100k rows it
    guessed a name-range index and sorted thousands of rows for a page of 100. Sampled (bounded
    cost) on SQLite; PostgreSQL's autovacuum keeps them fresh after this first pass."""
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql("PRAGMA analysis_limit=2000")
        connection.exec_driver_sql("ANALYZE")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
