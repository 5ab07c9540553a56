"""Units of work on the cluster database, and the caches that depend on what they change.

Code that writes notes which resources it changed (`Database.changed`); once the session commits,
the listeners (token and permission caches) hear of it, and a change that other API processes'
caches depend on is signalled to them too (db/changes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from ..errors import Unprocessable
from .changes import ChangeSignal
from .events import EventHub, collect_changes

# what cached tokens and permission snapshots are computed from
CACHE_INPUTS = frozenset({"groups", "links", "users", "api_client_authorizations"})
Listener = Callable[[], None]


class Database:
    def __init__(self, sessions: sessionmaker[Session], changes: ChangeSignal, writes: ChangeSignal | None = None):
        self.sessions, self.changes = sessions, changes
        self._listeners: list[Listener] = []
        self.events = EventHub()
        event.listen(sessions, "after_flush", collect_changes)
        # `writes`: bumped after every commit that wrote anything, through any session of these
        # (answers cached for it, backend/list_cache.py, are kept only while it stays the same)
        self.writes = writes
        # PostgreSQL: a read needs no transaction of its own (BEGIN and COMMIT were two of a small
        # list's five round trips); SQLite's are local calls
        self._reads_autocommit = sessions.kw["bind"].dialect.name == "postgresql"
        if writes is not None:
            event.listen(sessions, "after_flush", _note_write)
            event.listen(sessions, "do_orm_execute", _note_dml)
            event.listen(sessions, "after_commit", lambda session: _bump_if_written(session, writes))

    def on_cache_inputs_changed(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @contextmanager
    def session(self, read_only: bool = False) -> Iterator[Session]:
        """A session committed at the end (rolled back on any error); a uniqueness conflict is a 422.
        `read_only`: it only reads, each statement on its own snapshot (as Arvados' index reads)."""
        with self.sessions() as session:
            if read_only and self._reads_autocommit:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            try:
                yield session
                changed = session.info.pop("changed", set())
                session.flush()
                written = session.info.pop("events", {})
                session.commit()
                if written:
                    self.events.publish(list(written.values()))
                if changed & CACHE_INPUTS:  # after the commit, so no reader re-caches the old state
                    self._notify()
                    self.changes.bump()
            except IntegrityError as exc:
                session.rollback()
                raise Unprocessable(f"conflicts with an existing record: {exc.orig}") from None
            except BaseException:
                session.rollback()
                raise

    def written(self) -> int:
        """The version of everything this database holds (0 without a `writes` signal)."""
        return self.writes.version() if self.writes is not None else 0

    @staticmethod
    def changed(session: Session, resource: str) -> None:
        """Note a write to `resource`; caches it may affect are cleared once the session commits."""
        session.info.setdefault("changed", set()).add(resource)

    def catch_up(self) -> None:
        """Drop the caches if another process committed something they depend on."""
        if self.changes.changed():
            self._notify()

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()


def _note_write(session: Session, flush_context: object) -> None:
    if session.new or session.dirty or session.deleted:
        session.info["wrote"] = True


def _note_dml(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["wrote"] = True


def _bump_if_written(session: Session, writes: ChangeSignal) -> None:
    """After the commit, never before: a reader that sees the new version reads the new rows."""
    if session.info.pop("wrote", False):
        writes.bump()
