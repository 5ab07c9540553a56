"""What the resolver answers from, in memory: identifier -> the registrations of it, PDH -> the sites
that hold it. An answer is then a dictionary lookup, whatever the number of rows and sites (SQLite's
B-tree over a million registrations cost 20-30 µs of the 80 an answer took; PostgreSQL a round trip).

The database stays the record: a restart reloads from it. Every change goes through `Store.apply`,
which hands it here once its transaction has committed, so an answer never shows what the database
does not hold. The index is loaded in the background at start (answers come from SQL until it is
ready); what commits while it loads is noted and replayed on top of what was read, which is
idempotent: each change replaces one site's records of one key.

Memory: about 500 bytes a registration and 200 a held PDH (1,000,000 of each: 0.7 GB). A resolver
that holds more than its host should keep in memory sets `memory_index: false`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

log = logging.getLogger("archipelago.resolver.index")
FIELDS = ("uuid", "kind", "name", "pdh", "size", "residency")
Record = tuple[Any, ...]  # (site, uuid, kind, name, pdh, size, residency), as the database row
Change = tuple[str, dict[str, list[dict[str, Any]]], dict[str, bool]]  # site, identifiers, contents
BATCH = 5000  # rows read between two pauses that let the event loop's thread run


def _record(site: str, record: dict[str, Any]) -> Record:
    return (site, *(record.get(f) for f in FIELDS))


class MemoryIndex:
    def __init__(self) -> None:
        self._registrations: dict[str, tuple[Record, ...]] = {}
        self._holders: dict[str, tuple[str, ...]] = {}
        self._lock = threading.Lock()
        self._pending: list[Change] | None = []  # changes committed while loading; None once loaded

    @property
    def ready(self) -> bool:
        return self._pending is None

    # ------------------------------------------------------------ reads (any thread, no lock: one dict get)
    def registrations(self, identifier: str) -> tuple[Record, ...]:
        return self._registrations.get(identifier, ())

    def holders(self, pdh: str) -> tuple[str, ...]:
        return self._holders.get(pdh, ())

    # ------------------------------------------------------------ writes
    def changed(self, site: str, identifiers: dict[str, list[dict[str, Any]]], contents: dict[str, bool]) -> None:
        """One committed push or poll answer (what `Store.apply` wrote)."""
        with self._lock:
            if self._pending is not None:  # still loading: replayed once what was read is in
                self._pending.append((site, identifiers, contents))
            else:
                _apply(self._registrations, self._holders, (site, identifiers, contents))

    def load(self, registrations: Iterable[tuple[Any, ...]], contents: Iterable[tuple[str, str]]) -> None:
        """From the database's rows, in any order: (identifier, site, uuid, kind, name, pdh, size,
        residency) and (pdh, site)."""
        started = time.monotonic()
        by_identifier: dict[str, tuple[Record, ...]] = {}
        by_pdh: dict[str, tuple[str, ...]] = {}
        several: list[str] = []
        collecting = gc.isenabled()
        gc.disable()  # millions of new tuples would set off full collections, each walking what is built so far
        try:
            for batch in _batches(registrations):
                for row in batch:
                    found = by_identifier.get(row[0])
                    if found is None:
                        by_identifier[row[0]] = (row[1:],)
                    else:
                        by_identifier[row[0]] = (*found, row[1:])
                        several.append(row[0])
            for ident in several:  # in (site, uuid) order, as SQL reads them by the primary key
                by_identifier[ident] = tuple(sorted(by_identifier[ident], key=lambda r: (r[0], r[1])))
            for batch in _batches(contents):
                for pdh, site in batch:
                    by_pdh[pdh] = tuple(sorted((*by_pdh[pdh], site))) if pdh in by_pdh else (site,)
            with self._lock:
                for change in self._pending or ():
                    _apply(by_identifier, by_pdh, change)
                self._registrations, self._holders, self._pending = by_identifier, by_pdh, None
        finally:
            if collecting:
                gc.enable()
        # out of the collector's sight from now on: a full collection would walk these millions of
        # entries (0.1-0.3 s, with nothing to free: what the index drops it frees by reference count)
        gc.freeze()
        log.info("index loaded: %d identifiers, %d PDHs in %.1f s", len(by_identifier), len(by_pdh),
                 time.monotonic() - started)

    def __iter__(self) -> Iterator[tuple[str, tuple[Record, ...]]]:  # for tests: what the index holds
        return iter(self._registrations.items())


def _batches(rows: Iterable[Any]) -> Iterator[list[Any]]:
    """The rows BATCH at a time, letting the serving thread take the interpreter between batches."""
    it = iter(rows)
    while batch := list(islice(it, BATCH)):
        yield batch
        time.sleep(0)


def _apply(registrations: dict[str, tuple[Record, ...]], holders: dict[str, tuple[str, ...]], change: Change) -> None:
    """One site's change, as the database applied it: the site's records of each identifier replaced,
    each PDH held or not. Records stay in (site, uuid) order and sites in order, as SQL reads them."""
    site, identifiers, contents = change
    for ident, records in identifiers.items():
        kept = [r for r in registrations.get(ident, ()) if r[0] != site]
        merged = tuple(sorted(kept + [_record(site, r) for r in records], key=lambda r: (r[0], r[1])))
        if merged:
            registrations[ident] = merged
        else:
            registrations.pop(ident, None)
    for pdh, held in contents.items():
        sites = tuple(sorted({s for s in holders.get(pdh, ()) if s != site} | ({site} if held else set())))
        if sites:
            holders[pdh] = sites
        else:
            holders.pop(pdh, None)
