"""A collection's files without its whole manifest: a parsed, indexed form of each manifest, kept per
collection version (a version's manifest never changes, so its index never goes stale), from which
one directory's listing or one file's segments are read without parsing or sending the rest.

The index of a manifest is a small SQLite database: one row per directory (its subdirectories with
the bytes below each, how many files it holds directly, the bytes below it) and its files in sorted
chunks of CHUNK (each chunk its locators once, then name, size and segments per file). A listing
reads the directory's row and the chunks it needs; a file is one indexed lookup of its chunk.
Manifests of STORE_FROM_BYTES or more are indexed once into `<dir>/<uuid>.<version>.v1.sqlite`
(written under a temporary name, then renamed: never seen half-written; built on write in the
background from the tree the manifest's validation made, or by the first reader; an earlier
version's goes then); smaller ones are indexed in memory per request, which costs less than a file.
Locators are kept without `+A` signatures (each reader's are added as the answer is made).

Names are the manifest's, unescaped (`\\040` is a space). A name that is not UTF-8 is shown with
U+FFFD in place of its bad bytes (JSON cannot carry it) and cannot be looked up by that form."""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..errors import BadRequest, NotFound
from ..formats.manifest import Segment, parse
from ..formats.signing import strip_signatures

CHUNK = 1024
STORE_FROM_BYTES = 1 << 20  # a manifest's size (less its hints) is the second half of its PDH
MAX_LIMIT = 10_000
FORMAT = "v1"
SCHEMA = """
CREATE TABLE dirs (path TEXT PRIMARY KEY, subdirs BLOB NOT NULL, files INTEGER NOT NULL, bytes INTEGER NOT NULL)
    WITHOUT ROWID;
CREATE TABLE chunks (dir TEXT NOT NULL, n INTEGER NOT NULL, first TEXT NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (dir, n)) WITHOUT ROWID;
CREATE INDEX chunks_by_name ON chunks (dir, first);
"""
Signer = Callable[[str], str]
Tree = dict[str, dict[str, list[Segment]]]


@dataclass(frozen=True)
class FilesQuery:
    """What a caller asks of a collection's files: the file or directory at `path` ("" is the top);
    a directory's children, or with `recursive` everything below it; files' `segments` (signed
    locators) with `segments` (always for a file asked for by its path); a page of the items."""

    path: str = ""
    recursive: bool = False
    segments: bool = False
    offset: int = 0
    limit: int = 1000

    def __post_init__(self) -> None:
        if "\0" in self.path or "\\" in self.path or any(
                part in ("", ".", "..") for part in self.path.split("/") if self.path):
            raise BadRequest(f"file path {self.path!r} is not a plain path inside the collection (no '.', '..', "
                             "empty components, NUL or backslash)")
        if not 0 <= self.offset < 1 << 63 or not 0 <= self.limit <= MAX_LIMIT:
            raise BadRequest(f"offset must be 0 or more and limit from 0 to {MAX_LIMIT}")

    def as_params(self) -> dict[str, str]:
        return {"path": self.path, "recursive": str(self.recursive).lower(), "segments": str(self.segments).lower(),
                "offset": str(self.offset), "limit": str(self.limit)}


def _text(name: str) -> str:
    """A name as JSON and SQLite can hold it (bytes that are not UTF-8 become U+FFFD)."""
    if name.isascii():
        return name
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def build(connection: sqlite3.Connection, tree: Tree) -> None:
    """Write the index of a (valid) manifest, as `Manifest.tree()` gives it, into an empty database."""
    direct: dict[str, list[tuple[str, int, list[Segment]]]] = {}
    for dirname, files in tree.items():
        path = _text(dirname[2:])
        entries = direct.setdefault(path, [])
        entries += [(_text(name), sum(s[2] for s in segs), segs) for name, segs in files.items()]
    direct.setdefault("", [])  # the top, even of an empty collection
    for path in list(direct):  # every ancestor is a directory too
        while path:
            path = path.rpartition("/")[0]
            direct.setdefault(path, [])
    below = {path: sum(e[1] for e in entries) for path, entries in direct.items()}
    subdirs: dict[str, list[str]] = {path: [] for path in direct}
    for path in sorted(direct, key=len, reverse=True):  # deepest first: children's totals are complete
        if path:
            parent = path.rpartition("/")[0]
            subdirs[parent].append(path)
            below[parent] += below[path]
    connection.executescript(SCHEMA)
    dir_rows, chunk_rows = [], []
    for path, entries in direct.items():
        children = sorted(subdirs[path])
        subdir_list = [[child.rpartition("/")[2], below[child]] for child in children]
        dir_rows.append((path, orjson.dumps(subdir_list), len(entries), below[path]))
        entries.sort(key=lambda e: e[0])
        for n in range(0, len(entries), CHUNK):
            chunk_rows.append((path, n // CHUNK, entries[n][0], _chunk(entries[n:n + CHUNK])))
    connection.executemany("INSERT INTO dirs VALUES (?, ?, ?, ?)", dir_rows)
    connection.executemany("INSERT INTO chunks VALUES (?, ?, ?, ?)", chunk_rows)
    connection.commit()


def _chunk(entries: list[tuple[str, int, list[Segment]]]) -> bytes:
    places: dict[str, int] = {}
    files = []
    for name, size, segments in entries:
        flat: list[int] = []
        for locator, offset, length in segments:
            flat += (places.setdefault(locator, len(places)), offset, length)
        files.append([name, size, flat])
    return orjson.dumps({"l": [strip_signatures(locator) for locator in places], "f": files})


def _entries(body: bytes) -> Iterator[tuple[str, int, list[Segment]]]:
    chunk = orjson.loads(body)
    locators = chunk["l"]
    for name, size, flat in chunk["f"]:
        yield name, size, [(locators[flat[i]], flat[i + 1], flat[i + 2]) for i in range(0, len(flat), 3)]


class FileIndexes:
    """The indexes of collections' manifests in `directory` (a private directory of this cluster's),
    one per collection version: `<uuid>.<version>` names one manifest text forever (its locators'
    hints too, which the PDH leaves out: `archi keep move` changes them, not the PDH)."""

    def __init__(self, directory: Path):
        self.directory = directory
        self._lock = threading.Lock()
        self._building: dict[str, threading.Lock] = {}

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.{FORMAT}.sqlite"

    @staticmethod
    def stored(manifest_bytes: int) -> bool:
        return manifest_bytes >= STORE_FROM_BYTES

    def open(self, key: str, manifest_bytes: int, manifest_text: Callable[[], str]) -> sqlite3.Connection:
        """The index of the manifest `key` names (built from `manifest_text()` if there is none)."""
        if not self.stored(manifest_bytes):
            return in_memory(manifest_text())
        path = self.path(key)
        if not path.exists():
            self.prepare(key, lambda: parse(manifest_text()).tree())
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def prepare(self, key: str, tree: Callable[[], Tree]) -> None:
        """Build the stored index of a manifest unless it exists (one builder per key in this process;
        other processes may build the same one: whoever renames last wins, with the same content).
        The indexes of the collection's earlier versions go."""
        with self._lock:
            lock = self._building.setdefault(key, threading.Lock())
        try:
            with lock:
                self._build(key, tree)
        finally:  # whether this thread built it, found it built, or failed: no lock is left behind
            with self._lock:
                self._building.pop(key, None)

    def _build(self, key: str, tree: Callable[[], Tree]) -> None:
        path = self.path(key)
        if path.exists():
            return
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.tmp{secrets.token_hex(6)}")
        try:
            connection = sqlite3.connect(partial)
            try:
                connection.execute("PRAGMA journal_mode=OFF")
                build(connection, tree())
            finally:
                connection.close()
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        uuid = key.rpartition(".")[0]
        for old in self.directory.glob(f"{uuid}.*.{FORMAT}.sqlite"):
            if old != path:
                old.unlink(missing_ok=True)

    def prepare_later(self, key: str, manifest_bytes: int, tree: Tree) -> None:
        """Index a big manifest in the background, from the tree its validation made (on write: its
        first reader then finds the index ready)."""
        if self.stored(manifest_bytes) and not self.path(key).exists():
            threading.Thread(target=self.prepare, args=(key, lambda: tree), name="file-index", daemon=True).start()


# ------------------------------------------------------------------ answering
def _dir_row(connection: sqlite3.Connection, path: str) -> tuple[list[list[Any]], int, int] | None:
    row = connection.execute("SELECT subdirs, files, bytes FROM dirs WHERE path = ?", (path,)).fetchone()
    return None if row is None else (orjson.loads(row[0]), row[1], row[2])


def _file(connection: sqlite3.Connection, path: str) -> tuple[str, int, list[Segment]] | None:
    parent, _, name = path.rpartition("/")
    row = connection.execute("SELECT body FROM chunks WHERE dir = ? AND first <= ? ORDER BY first DESC LIMIT 1",
                             (parent, name)).fetchone()
    if row is None:
        return None
    entries = list(_entries(row[0]))
    at = bisect_left([e[0] for e in entries], name)
    return entries[at] if at < len(entries) and entries[at][0] == name else None


def _files_of(connection: sqlite3.Connection, path: str, skip: int,
              take: int) -> Iterator[tuple[str, int, list[Segment]]]:
    """Files `skip` to `skip + take` of one directory, reading only the chunks that hold them."""
    if take <= 0:
        return
    rows = connection.execute("SELECT body FROM chunks WHERE dir = ? AND n >= ? AND n <= ? ORDER BY n",
                              (path, skip // CHUNK, (skip + take - 1) // CHUNK))
    position = (skip // CHUNK) * CHUNK
    for (body,) in rows:
        for found in _entries(body):
            if skip <= position < skip + take:
                yield found
            position += 1


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def answer(connection: sqlite3.Connection, query: FilesQuery, sign: Signer | None) -> dict[str, Any]:
    """The listing (or the one file) `query` asks for, in the endpoint's shape."""
    signed: dict[str, str] = {}

    def segments(segs: list[Segment]) -> list[list[Any]]:
        if sign is None:
            return [list(s) for s in segs]
        return [[signed.get(loc) or signed.setdefault(loc, sign(loc)), off, n] for loc, off, n in segs]

    def file_item(directory: str, name: str, size: int, segs: list[Segment], with_segments: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"path": _join(directory, name), "name": name, "type": "file", "size": size}
        if with_segments:
            item["segments"] = segments(segs)
        return item

    path, offset, limit = query.path, query.offset, query.limit
    here = _dir_row(connection, path)
    if here is None:
        found = _file(connection, path) if path else None
        if found is None:
            raise NotFound(f"no file or directory {path!r} in this collection")
        name, size, segs = found
        one = [file_item(path.rpartition("/")[0], name, size, segs, True)][offset:offset + limit]
        return {"path": path, "type": "file", "size": size, "items": one, "items_available": 1,
                "offset": offset, "limit": limit}
    subdirs, files, total = here
    items: list[dict[str, Any]] = []
    if not query.recursive:
        available = len(subdirs) + files
        for name, size in subdirs[offset:offset + limit]:
            items.append({"path": _join(path, name), "name": name, "type": "directory", "size": size})
        skip = max(0, offset - len(subdirs))
        for name, size, segs in _files_of(connection, path, skip, limit - len(items)):
            items.append(file_item(path, name, size, segs, query.segments))
    else:
        prefix = f"{path}/" if path else ""
        if path:
            rows = connection.execute("SELECT path, files, bytes FROM dirs WHERE path = ? OR (path >= ? AND path < ?) "
                                      "ORDER BY path", (path, prefix, f"{path}0")).fetchall()
        else:
            rows = connection.execute("SELECT path, files, bytes FROM dirs ORDER BY path").fetchall()
        available = sum(n for _, n, _ in rows) + len(rows) - 1
        position = 0
        for directory, count, size in rows:
            if len(items) >= limit:
                break
            if directory != path:
                if position >= offset:
                    items.append({"path": directory, "name": directory.rpartition("/")[2], "type": "directory",
                                  "size": size})
                position += 1
            if position + count <= offset:
                position += count
                continue
            skip = max(0, offset - position)
            for name, fsize, segs in _files_of(connection, directory, skip, limit - len(items)):
                items.append(file_item(directory, name, fsize, segs, query.segments))
            position += count
    return {"path": path, "type": "directory", "size": total, "items": items, "items_available": available,
            "offset": offset, "limit": limit}


def in_memory(manifest_text: str) -> sqlite3.Connection:
    """The index of a manifest, built in memory for one request."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    build(connection, parse(manifest_text).tree())
    return connection


def in_memory_answer(manifest_text: str, query: FilesQuery) -> dict[str, Any]:
    """`answer` from a manifest indexed for this one query (its locators as they stand in the text)."""
    connection = in_memory(manifest_text)
    try:
        return answer(connection, query, None)
    finally:
        connection.close()
