"""A bounded block cache: memory first, then an optional disk directory, both LRU.

Blocks are immutable and named by their md5, so a cached copy never goes stale; a corrupt
disk entry is detected on read and dropped.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Generic, TypeVar

# what a cache's owner keeps in it: bytes, or (a gateway) blocks read into memory mapped at once
Block = TypeVar("Block", bound="bytes | bytearray | mmap.mmap")


class BlockCache(Generic[Block]):
    def __init__(self, memory_bytes: int = 256 << 20, disk_dir: Path | None = None, disk_bytes: int = 0):
        self.memory_bytes, self.disk_bytes = memory_bytes, disk_bytes
        self.disk_dir = Path(disk_dir) if disk_dir else None
        self._memory: OrderedDict[str, Block | bytes] = OrderedDict()  # bytes: read back from disk
        self._memory_used = 0
        self._disk: OrderedDict[str, int] = OrderedDict()  # md5 -> size, least recently used first
        self._disk_used = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        if self.disk_dir and disk_bytes:
            self.disk_dir.mkdir(parents=True, exist_ok=True)
            for leftover in self.disk_dir.glob(".*.tmp"):  # an interrupted write: never committed
                leftover.unlink(missing_ok=True)
            entries = [(e.stat().st_atime, e.name, e.stat().st_size) for e in os.scandir(self.disk_dir)
                       if len(e.name) == 32]
            for _, name, size in sorted(entries):
                self._disk[name] = size
                self._disk_used += size

    def get(self, md5: str) -> Block | bytes | None:
        with self._lock:
            data = self._memory.get(md5)
            if data is not None:
                self._memory.move_to_end(md5)
                self.hits += 1
                return data
            on_disk = md5 in self._disk
        if on_disk and (data := self._read_disk(md5)) is not None:
            self._remember(md5, data)
            with self._lock:
                self.hits += 1
            return data
        with self._lock:
            self.misses += 1
        return None

    def put(self, md5: str, data: Block) -> None:
        self._remember(md5, data)
        if self.disk_dir and self.disk_bytes and len(data) <= self.disk_bytes:
            self._write_disk(md5, data)

    def _remember(self, md5: str, data: Block | bytes) -> None:
        if len(data) > self.memory_bytes:
            return
        with self._lock:
            if md5 in self._memory:
                self._memory.move_to_end(md5)
                return
            self._memory[md5] = data
            self._memory_used += len(data)
            while self._memory_used > self.memory_bytes:
                _, evicted = self._memory.popitem(last=False)
                self._memory_used -= len(evicted)

    def _read_disk(self, md5: str) -> bytes | None:
        assert self.disk_dir is not None
        try:
            data = (self.disk_dir / md5).read_bytes()
        except FileNotFoundError:
            data = None
        with self._lock:
            if data is None or hashlib.md5(data).hexdigest() != md5:
                size = self._disk.pop(md5, 0)
                self._disk_used -= size
                (self.disk_dir / md5).unlink(missing_ok=True)
                return None
            self._disk.move_to_end(md5)
        return data

    def _write_disk(self, md5: str, data: Block) -> None:
        assert self.disk_dir is not None
        with self._lock:
            if md5 in self._disk:
                self._disk.move_to_end(md5)
                return
        writer = self.writer(md5)
        writer.write(memoryview(data))
        writer.commit()

    def writer(self, md5: str) -> DiskEntryWriter:
        """Write a block to the disk tier piece by piece; it becomes visible only on commit()."""
        assert self.disk_dir is not None and self.disk_bytes
        return DiskEntryWriter(self, md5)

    def disk_path(self, md5: str) -> Path | None:
        """The file holding a cached block (for sendfile), counted as a use. Its content was
        verified when it was stored; readers that need certainty verify as they read."""
        with self._lock:
            if self.disk_dir is None or md5 not in self._disk:
                return None
            self._disk.move_to_end(md5)
            self.hits += 1
        path = self.disk_dir / md5
        return path if path.exists() else None

    def _admit(self, md5: str, size: int) -> None:
        assert self.disk_dir is not None
        with self._lock:
            if md5 not in self._disk:
                self._disk[md5] = size
                self._disk_used += size
            while self._disk_used > self.disk_bytes and len(self._disk) > 1:
                victim, victim_size = self._disk.popitem(last=False)
                self._disk_used -= victim_size
                (self.disk_dir / victim).unlink(missing_ok=True)


class DiskEntryWriter:
    """A block being written into a cache directory: a hidden temporary file, renamed into place
    on commit() (so no reader sees half a block), removed on abort()."""

    def __init__(self, cache: BlockCache, md5: str):
        assert cache.disk_dir is not None
        self.cache, self.md5, self.size = cache, md5, 0
        self.path = cache.disk_dir / md5
        self._temp = cache.disk_dir / f".{md5}.{os.getpid()}.{threading.get_ident()}.{id(self)}.tmp"
        self._fd = os.open(self._temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        # a reader of its own (for sendfile, which seeks it): the writer's position is never moved
        self.file = open(self._temp, "rb", buffering=0)  # noqa: SIM115

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(self._fd, view, self.size)
            view, self.size = view[written:], self.size + written

    def commit(self) -> None:
        self.file.close()
        os.close(self._fd)
        os.replace(self._temp, self.path)
        self.cache._admit(self.md5, self.size)

    def abort(self) -> None:
        self.file.close()
        os.close(self._fd)
        self._temp.unlink(missing_ok=True)
