"""Files' checksums (DRS `checksums`): a file's md5 or sha-256 is not in its manifest (a block's md5
is the file's only when the file is that whole block), so it is computed once, by reading the file
through Keep with the reader's token, and kept in the cluster's database under PDH + path. A bundle's
is the DRS rule's: the digest of its children's digests, sorted and concatenated.

A large file takes a while: the computation goes on in the background and the caller waits a
bounded time, then is told to come back (DRS 202 + Retry-After). The same file is never hashed twice
at once."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import AbstractContextManager

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import FileChecksum
from ..errors import ArchipelagoError, BadRequest
from ..formats.locator import Locator
from ..formats.manifest import Segment

ALGORITHMS = {"md5": hashlib.md5, "sha-256": hashlib.sha256}
RETRY_AFTER_SECONDS = 5


class StillComputing(ArchipelagoError):
    """The checksum is being computed: ask again after `retry_after` seconds (DRS 202)."""

    status = 202
    retry_after = RETRY_AFTER_SECONDS


def algorithm(name: str) -> str:
    if name not in ALGORITHMS:
        raise BadRequest(f"checksum {name!r} is not offered: one of {', '.join(ALGORITHMS)}")
    return name


def whole_block_md5(segments: list[Segment]) -> str | None:
    """A file that is exactly one whole block has that block's md5: nothing to read."""
    if len(segments) == 1:
        locator = Locator.parse(segments[0][0])
        if segments[0][1] == 0 and segments[0][2] == locator.size:
            return locator.md5
    return None


def bundle_digest(name: str, children: Iterable[str]) -> str:
    """DRS 1.5: the digest of the children's digests, sorted (hex) and concatenated."""
    return ALGORITHMS[name]("".join(sorted(children)).encode()).hexdigest()


class Checksums:
    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]] | None, wait_seconds: float = 20.0,
                 workers: int = 2):
        self._sessions = sessions
        self._memory: dict[tuple[str, str, str], str] = {}  # without a database (tests of the HTTP layer)
        self._running: dict[tuple[str, str, str], Future[str]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="checksums")
        self.wait_seconds = wait_seconds

    def cached(self, pdh: str, path: str, name: str) -> str | None:
        if self._sessions is None:
            return self._memory.get((pdh, name, path))
        with self._sessions() as session:
            row = session.get(FileChecksum, (pdh, name, path))
            return row.checksum if row is not None else None

    def remember(self, pdh: str, path: str, name: str, value: str) -> None:
        if self._sessions is None:
            self._memory[(pdh, name, path)] = value
            return
        try:
            with self._sessions() as session:  # committed at the end
                session.merge(FileChecksum(pdh=pdh, algorithm=name, path=path, checksum=value))
        except (ArchipelagoError, IntegrityError):  # another API process stored it first: the same value
            pass

    def get(self, pdh: str, path: str, name: str, compute: Callable[[], str], wait: bool = True) -> str:
        """The checksum, from the cache or computed now (waiting at most wait_seconds; then
        StillComputing while the computation goes on)."""
        if (found := self.cached(pdh, path, name)) is not None:
            return found
        key = (pdh, name, path)
        with self._lock:
            future = self._running.get(key)
            if future is None:
                future = self._running[key] = self._pool.submit(self._compute, key, compute)
        try:
            return future.result(self.wait_seconds if wait else 0)
        except FutureTimeout:
            raise StillComputing(f"the {name} of {pdh}/{path} is being computed: ask again in "
                                 f"{RETRY_AFTER_SECONDS} s") from None

    def _compute(self, key: tuple[str, str, str], compute: Callable[[], str]) -> str:
        try:
            return compute()  # which remembers what it computed (a bundle: its files' too)
        finally:
            with self._lock:
                self._running.pop(key, None)


def digest_of(name: str, pieces: Iterable[bytes]) -> str:
    hasher = ALGORITHMS[name]()
    for piece in pieces:
        hasher.update(piece)
    return hasher.hexdigest()
