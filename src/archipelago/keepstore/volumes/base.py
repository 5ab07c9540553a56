"""The volume interface. Blocking calls: keepstore runs them in worker threads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

import xxhash


def fast_hasher(data: bytes | bytearray | memoryview = b"") -> xxhash.xxh3_128:
    return xxhash.xxh3_128(data)


class IndexEntry(NamedTuple):
    md5: str
    size: int
    mtime_ns: int


class BlockReader(ABC):
    size: int
    mtime_ns: int

    @abstractmethod
    def read(self, n: int) -> bytes: ...

    def fast_checksum(self) -> str | None:
        """The block's xxh3-128 recorded when it was written, if the volume keeps one.

        md5 proves identity at write time; re-reading only needs to catch bit rot, which a
        checksum fifty times cheaper than md5 catches as well (clients still verify md5 end to end).
        """
        return None

    def file(self) -> BinaryIO | None:
        """The underlying regular file, when there is one: lets keepstore use sendfile()."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class BlockWriter(ABC):
    """Receives a block in pieces; nothing is visible under the block's name until commit()."""

    @abstractmethod
    def write(self, chunk: bytes | memoryview) -> None: ...

    @abstractmethod
    def commit(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...


@dataclass
class Volume(ABC):
    uuid: str
    read_only: bool = False
    storage_classes: frozenset[str] = field(default_factory=lambda: frozenset({"default"}))
    replication: int = 1  # how many copies one write to this volume represents

    @property
    @abstractmethod
    def device_id(self) -> str: ...

    @abstractmethod
    def open(self, md5: str) -> BlockReader:
        """Raise BlockNotFound if absent."""

    @abstractmethod
    def writer(self, md5: str) -> BlockWriter: ...

    @abstractmethod
    def mtime_ns(self, md5: str) -> int | None:
        """None if the block is not on this volume."""

    @abstractmethod
    def touch(self, md5: str) -> None: ...

    @abstractmethod
    def index(self, prefix: str = "") -> Iterator[IndexEntry]: ...

    @abstractmethod
    def trash(self, md5: str, delete_at: float) -> None:
        """Hide the block, recoverable by untrash() until `delete_at` (unix seconds)."""

    @abstractmethod
    def untrash(self, md5: str) -> bool:
        """Restore a trashed block; False if there was nothing to restore."""

    @abstractmethod
    def empty_trash(self, now: float) -> int:
        """Delete trashed blocks whose time is up; returns how many."""

    def refresh_checksum(self, md5: str) -> None:  # noqa: B027 - only volumes with fast checksums
        """Re-record the fast checksum of a block whose md5 was just found good."""

    @abstractmethod
    def quarantine(self, md5: str) -> None:
        """Set a corrupt block aside so it is never served and a fresh PUT can replace it."""

    def read_all(self, md5: str) -> bytes:
        reader = self.open(md5)
        try:
            return reader.read(reader.size)
        finally:
            reader.close()
