"""One remote block on its first read, in four lanes that run at once: receiving from the remote
cluster, md5, writing the cache file, and sending to the caller.

Before, one thread received, hashed and wrote each piece in series and the caller got it from the
cache file afterwards. Now each piece goes to the caller as soon as it arrives, while md5 and the
cache write of it run in threads of their own (both release the GIL). What does not change: the
last piece goes out only once the whole block's md5 checked out (otherwise the connection is cut,
so no caller ever holds a complete wrong block), and the cache entry becomes visible only then.

The cache file is written with O_DIRECT where the filesystem allows it: copying a block into fresh
page-cache pages cost more CPU than its md5 on this project's VM (README, Federated read).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import mmap
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from aiohttp import web

from ..files import aligned, open_direct
from ..keep.cache import DiskEntryWriter
from ..keep.http import BodyError, read_into
from ..keep.md5 import new_md5
from .http import CHUNK, fork, run

SLOTS = 4  # pieces in flight per relay: arriving, hashed and written, being sent, spare
_free: list[list[mmap.mmap]] = []  # page-aligned (O_DIRECT) and reused (fresh pages are dear)
_free_lock = threading.Lock()


class RemoteCutShort(Exception):
    """The remote cluster sent less than it announced."""


def take_slots() -> list[mmap.mmap]:
    with _free_lock:
        if _free:
            return _free.pop()
    return [mmap.mmap(-1, CHUNK) for _ in range(SLOTS)]


def give_back(slots: list[mmap.mmap]) -> None:
    with _free_lock:
        if len(_free) < 8:
            _free.append(slots)
            return
    for slot in slots:
        slot.close()


class CacheFile:
    """Pieces of a block written at their offsets into a cache entry's temp file, by O_DIRECT
    when possible (else through the entry's own buffered writer)."""

    def __init__(self, entry: DiskEntryWriter):
        self.entry = entry
        fd = open_direct(entry.file.name, os.O_WRONLY)  # None e.g. on tmpfs: buffered it is
        self.fd = -1 if fd is None else fd

    def write(self, slot: mmap.mmap, length: int, offset: int) -> None:
        """Runs in the write lane, in piece order. Every piece but the last is CHUNK long (aligned)."""
        if self.fd < 0:
            self.entry.write(memoryview(slot)[:length])
            return
        padded = aligned(length)
        if padded != length:  # the last piece: padded for O_DIRECT, cut back by finish()
            slot[length:padded] = bytes(padded - length)
        if os.pwrite(self.fd, memoryview(slot)[:padded], offset) != padded:
            raise OSError(errno.ENOSPC, "short write to the remote-block cache")

    def finish(self, size: int) -> None:
        if self.fd >= 0:
            os.ftruncate(self.fd, size)
            self.entry.size = size
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class RelayPipe:
    """Moves one block from an open remote body to the caller's response (see the module)."""

    def __init__(self, body: Any, size: int, md5: str, cache: DiskEntryWriter):
        self.body, self.size, self.md5 = body, size, md5
        self.cache = CacheFile(cache)
        self.hasher = new_md5()  # in lanes with the other blocks being hashed (keep/md5.py)
        self.slots = take_slots()

    def _receive(self, slot: mmap.mmap, length: int) -> None:
        """Exactly `length` bytes of the body into `slot` (a worker thread)."""
        view, got = memoryview(slot), 0
        while got < length:
            try:
                n = read_into(self.body, view[got:length])
            except BodyError as exc:
                raise RemoteCutShort(f"the remote cluster's answer broke off ({exc.__class__.__name__})") from None
            if not n:
                raise RemoteCutShort(f"the remote cluster sent {got} of a {length}-byte piece")
            got += n

    async def run(self, response: web.StreamResponse, on_verified: Callable[[], Awaitable[None]]) -> bool:
        """True once every byte reached the caller and the md5 checked out; False if it did not
        (the caller must cut the connection: the last piece was held back). `on_verified` runs once
        the block is checked and its cache file complete, before the caller gets its last piece, so
        whoever has the whole block can count on the cache entry (and the counters) being there."""
        pieces = [(offset, min(CHUNK, self.size - offset)) for offset in range(0, self.size, CHUNK)]
        if not pieces:  # an empty body is a block too, and must be the one named
            if await run(self.hasher.hexdigest) != self.md5:  # off the loop: it may join a batch
                return False
            self.cache.finish(0)
            await on_verified()
            return True
        with ThreadPoolExecutor(1, "relay-md5") as hashing, ThreadPoolExecutor(1, "relay-cache") as writing:
            busy: list[list[Future[None]]] = [[] for _ in self.slots]
            try:
                receiving = asyncio.ensure_future(run(self._receive, self.slots[0], pieces[0][1])) if pieces else None
                for k, (offset, length) in enumerate(pieces):
                    slot = self.slots[k % SLOTS]
                    assert receiving is not None
                    await receiving
                    busy[k % SLOTS] = [hashing.submit(self.hasher.update, memoryview(slot)[:length]),
                                       writing.submit(self.cache.write, slot, length, offset)]
                    receiving = None
                    if k + 1 < len(pieces):  # the next piece arrives while this one is checked and sent
                        following = (k + 1) % SLOTS
                        for done in busy[following]:
                            await asyncio.wrap_future(done)
                        receiving = asyncio.ensure_future(run(self._receive, self.slots[following],
                                                              pieces[k + 1][1]))
                    else:
                        await asyncio.wrap_future(busy[k % SLOTS][0])  # md5 runs in order: the whole block
                        if await run(self.hasher.hexdigest) != self.md5:  # off the loop: it may join a batch
                            return False
                        for futures in busy:
                            for done in futures:
                                await asyncio.wrap_future(done)
                        self.cache.finish(self.size)
                        await on_verified()
                    # the write returns once the transport holds under its low-water mark (16 KiB) of
                    # what it was given; the slot is refilled only after SLOTS - 1 more such writes
                    await response.write(memoryview(slot)[:length])
                return True
            finally:
                if receiving is not None:
                    with contextlib.suppress(BaseException):
                        await receiving
                for futures in busy:
                    for done in futures:
                        with contextlib.suppress(BaseException):
                            await asyncio.wrap_future(done)

    def close(self) -> None:
        """Once every lane has stopped: the slots go back to the pool, the cache file is closed."""
        self.cache.close()
        give_back(self.slots)


async def send_cached(response: web.StreamResponse, fd: int, size: int,
                      seen: Callable[[memoryview], None] | None = None,
                      so_far: Callable[[int], Awaitable[bool]] | None = None) -> bool:
    """A block sent from memory while a worker thread reads the next piece off the disk.

    Cache entries (and stored blocks) are written with O_DIRECT, so they are not in the page cache:
    sendfile would read them from the disk on the event loop's thread, one relay after another. They
    are read here with O_DIRECT too when the filesystem allows. Each piece read is passed to `seen`
    in the worker thread, and `so_far(bytes read)` is awaited before the piece is sent (both to check
    the block as it goes out). False if the file proved shorter than `size` or `so_far` said no."""
    with contextlib.suppress(OSError):  # not on this filesystem: buffered reads
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | getattr(os, "O_DIRECT", 0))
    slots = take_slots()
    pieces = [(offset, min(CHUNK, size - offset)) for offset in range(0, size, CHUNK)]

    def read(k: int) -> int:
        offset, length = pieces[k]
        view = memoryview(slots[k % SLOTS])
        padded = aligned(length)  # reads past the end stop there
        got = min(length, os.preadv(fd, [view[:padded]], offset))
        if seen is not None:
            seen(view[:got])
        return got

    reading: asyncio.Future[int] | None = fork(read, 0) if pieces else None
    try:
        for k, (offset, length) in enumerate(pieces):
            assert reading is not None
            got = await reading
            reading = None
            if got < length or (so_far is not None and not await so_far(offset + got)):
                return False
            if k + 1 < len(pieces):
                reading = fork(read, k + 1)  # runs while this piece is sent
            # returns once the transport holds under 16 KiB of it: the slot is free SLOTS - 1 pieces on
            await response.write(memoryview(slots[k % SLOTS])[:length])
        return True
    finally:
        if reading is not None:
            with contextlib.suppress(BaseException):
                await reading
        give_back(slots)
