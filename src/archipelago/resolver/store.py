"""The resolver's database: what each site registered (published identifiers, the PDHs it holds)
and the acknowledged position in each site's change cursor. Its own schema in the cluster database
engine: SQLite embedded, PostgreSQL by URL. Liveness timestamps live in memory (service.py) and are
saved here every second; what sites registered is saved with each push, before it is acknowledged.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import BigInteger, Float, Integer, String, Text, bindparam, delete, insert, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..db.session import make_engine, session_factory
from ..errors import ArchipelagoError, BadRequest, Unauthorized
from .index import FIELDS, MemoryIndex
from .liveness import Heard

CHUNK = 500  # keys per IN (...) clause
READ_MMAP = 1 << 34  # bytes of the database file answers may map (address space, not memory)


class OutOfStep(ArchipelagoError):
    """A push that starts after what this resolver has: the site must send from `last_seq`."""

    status = 409

    def __init__(self, site: str, last_seq: int, after: int):
        super().__init__(f"site {site}: this resolver has its changes up to {last_seq}, the push starts after {after}")
        self.last_seq = last_seq


class ResolverBase(DeclarativeBase):
    pass


class SiteRow(ResolverBase):
    __tablename__ = "resolver_sites"
    cluster_id: Mapped[str] = mapped_column(String(5), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)  # of the site's change cursor, applied here
    last_signed_at: Mapped[float] = mapped_column(Float, default=0.0)  # of the last push accepted (replays refused)
    push_ok: Mapped[float | None] = mapped_column(Float)
    poll_ok: Mapped[float | None] = mapped_column(Float)
    poll_failed: Mapped[float | None] = mapped_column(Float)
    poll_error: Mapped[str | None] = mapped_column(Text)


class Registration(ResolverBase):
    """A published identifier a site holds, with what the site published of the object it names."""

    __tablename__ = "resolver_registrations"
    identifier: Mapped[str] = mapped_column(String(2048), primary_key=True)
    site: Mapped[str] = mapped_column(String(5), primary_key=True)
    uuid: Mapped[str] = mapped_column(String(27), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(Text)
    pdh: Mapped[str | None] = mapped_column(String(64), index=True)
    size: Mapped[int | None] = mapped_column(BigInteger)
    residency: Mapped[str | None] = mapped_column(String(32))


class Content(ResolverBase):
    """A PDH a site holds (for the federation's own PDH lookups; told only to member sites)."""

    __tablename__ = "resolver_contents"
    pdh: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(5), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)


ROW = ("site", *FIELDS)
HOLDERS_SQL = "SELECT site FROM resolver_contents WHERE pdh = ? ORDER BY site"  # (the index's order too)
REGISTRATIONS_SQL = (f"SELECT site, {', '.join(FIELDS)} FROM resolver_registrations WHERE identifier = ? "
                     "ORDER BY site, uuid")
ALL_REGISTRATIONS_SQL = f"SELECT identifier, site, {', '.join(FIELDS)} FROM resolver_registrations"
ALL_CONTENTS_SQL = "SELECT pdh, site FROM resolver_contents"


def _rows(connection: sqlite3.Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    yield from connection.execute(sql)  # only when the first rows have been read


def _streamed(connection: Connection, sql: str) -> Iterator[tuple[Any, ...]]:
    for row in connection.execute(text(sql)):  # asked only when the first rows have been read
        yield tuple(row)


def _chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


class Store:
    def __init__(self, url: str):
        self.engine = make_engine(url)
        ResolverBase.metadata.create_all(self.engine)
        self.sessions = session_factory(self.engine)
        # SQLite: answers read through the sqlite3 module directly, one connection per thread (WAL: readers
        # never wait for the writer), cheap enough to run on the event loop itself
        self.sqlite_path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else None
        self._local = threading.local()
        self.index: MemoryIndex | None = None  # answers from memory once loaded (load_index)

    @property
    def inline_reads(self) -> bool:
        """Whether reads are cheap enough to run on the event loop (memory, or SQLite: no network hop)."""
        return self.sqlite_path is not None or (self.index is not None and self.index.ready)

    @property
    def index_state(self) -> str:
        return "off" if self.index is None else "ready" if self.index.ready else "loading"

    def load_index(self) -> None:
        """Answer from memory (index.py) once every registration is read: run once, in the background
        at start; changes that commit meanwhile (from when `index` is set) are kept and replayed."""
        if self.index is None:
            self.index = MemoryIndex()
        index = self.index
        if self.sqlite_path is not None:
            reader = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True)
            try:
                index.load(reader.execute(ALL_REGISTRATIONS_SQL), _rows(reader, ALL_CONTENTS_SQL))
            finally:
                reader.close()
            return
        with self.engine.connect() as connection:
            streaming = connection.execution_options(stream_results=True, yield_per=10_000)
            index.load(_streamed(streaming, ALL_REGISTRATIONS_SQL), _streamed(streaming, ALL_CONTENTS_SQL))

    def _sqlite(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(f"file:{self.sqlite_path}?mode=ro", uri=True, check_same_thread=False)
            # the indexes' pages read through a memory map (no read() per page, no copy into SQLite's own
            # 2 MiB cache, which a million registrations overflow): an answer's lookup costs about the
            # same whatever the number of rows and sites
            connection.execute(f"PRAGMA mmap_size={READ_MMAP}")
            self._local.connection = connection
        return connection

    def ensure_sites(self, sites: Iterable[str]) -> None:
        """A row for every configured site, made once at start (pushes and polls then only update it)."""
        with self.sessions.begin() as session:
            known = set(session.scalars(select(SiteRow.cluster_id)))
            session.add_all(SiteRow(cluster_id=s, last_seq=0, last_signed_at=0.0) for s in sites if s not in known)

    def sites(self) -> dict[str, SiteRow]:
        with self.sessions() as session:
            return {row.cluster_id: row for row in session.scalars(select(SiteRow))}

    def apply(self, site: str, after: int | None, to_seq: int, identifiers: dict[str, list[dict[str, Any]]],
              contents: dict[str, bool], signed_at: float | None = None) -> int:
        """One push or poll answer, whole or not at all; returns the site's acknowledged sequence.
        `after` None: a first contact, which only asks where this resolver stands."""
        for ident, records in identifiers.items():
            if len({record.get("uuid") for record in records}) != len(records):
                raise BadRequest(f"identifier {ident[:80]!r}: the same object is listed twice")
        with self.sessions.begin() as session:
            row = session.get(SiteRow, site, with_for_update=True)
            if row is None:
                raise Unauthorized(f"unknown site {site}")
            if signed_at is not None:
                if signed_at <= row.last_signed_at:
                    raise Unauthorized(f"replayed push of site {site}: signed at {signed_at:.6f}, not after the "
                                       f"last one accepted ({row.last_signed_at:.6f})")
                row.last_signed_at = signed_at
            if after is None:
                return row.last_seq
            if after > row.last_seq:
                raise OutOfStep(site, row.last_seq, after)
            for part in _chunks(list(identifiers)):
                session.execute(delete(Registration).where(Registration.site == site,
                                                           Registration.identifier.in_(part)))
            rows = [{"identifier": ident, "site": site, **{f: record.get(f) for f in FIELDS}}
                    for ident, records in identifiers.items() for record in records]
            if rows:
                session.execute(insert(Registration), rows)
            pdhs = list(contents)
            for part in _chunks(pdhs):
                session.execute(delete(Content).where(Content.site == site, Content.pdh.in_(part)))
            held = [{"pdh": pdh, "site": site, "seq": to_seq} for pdh, present in contents.items() if present]
            if held:
                session.execute(insert(Content), held)
            row.last_seq = max(row.last_seq, to_seq)
            last = row.last_seq
        if self.index is not None and (identifiers or contents):  # committed: answers may show it now
            self.index.changed(site, identifiers, contents)
        return last

    def registrations(self, identifier: str) -> list[dict[str, Any]]:
        """The hot path of every answer: plain rows, no ORM objects."""
        index = self.index
        if index is not None and index.ready:
            return [dict(zip(ROW, row, strict=True)) for row in index.registrations(identifier)]
        if self.sqlite_path is not None:
            rows = self._sqlite().execute(REGISTRATIONS_SQL, (identifier,)).fetchall()
            return [dict(zip(ROW, row, strict=True)) for row in rows]
        table = Registration.__table__
        with self.engine.connect() as connection:
            found = connection.execute(select(table.c.site, *(table.c[f] for f in FIELDS))
                                       .where(table.c.identifier == identifier)
                                       .order_by(table.c.site, table.c.uuid))
            return [dict(row._mapping) for row in found]

    def published_content(self, pdh: str) -> list[dict[str, Any]]:
        """Published objects with this content (what a `keep:PDH` identifier resolves to for anyone)."""
        with self.sessions() as session:
            found = session.execute(select(Registration).where(Registration.pdh == pdh)).scalars()
            return [{"site": r.site, **{f: getattr(r, f) for f in FIELDS}} for r in found]

    def holders(self, pdh: str) -> list[str]:
        index = self.index
        if index is not None and index.ready:
            return list(index.holders(pdh))
        if self.sqlite_path is not None:
            return [row[0] for row in self._sqlite().execute(HOLDERS_SQL, (pdh,))]
        with self.sessions() as session:
            return list(session.scalars(select(Content.site).where(Content.pdh == pdh).order_by(Content.site)))

    def save_heard(self, heard: dict[str, Heard]) -> None:
        table: Any = SiteRow.__table__
        rows = [{"site": site, "push_ok": h.push_ok, "poll_ok": h.poll_ok, "poll_failed": h.poll_failed,
                 "poll_error": h.poll_error} for site, h in heard.items()]
        with self.engine.begin() as connection:
            connection.execute(update(table).where(table.c.cluster_id == bindparam("site")).values(
                push_ok=bindparam("push_ok"), poll_ok=bindparam("poll_ok"), poll_failed=bindparam("poll_failed"),
                poll_error=bindparam("poll_error")), rows)
