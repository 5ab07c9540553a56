"""A block's body taken straight off its socket, with md5 and the disk write in lanes of their own.

aiohttp hands a body over as fresh `bytes` objects of at most 256 KiB, each copied once more by its
parser, with a round of the event loop per piece: for a 64 MiB block that costs about as much CPU as
the md5 itself (profiled: the server spent 210 ms of CPU per block, 86 of them in md5). Here the
event loop lets go of the connection once the headers are read: a worker thread receives the rest
with `recv_into` into a few reused buffers, while one more thread hashes and another writes each
piece in order (md5 and the disk both release the GIL). The connection is closed after the answer,
because aiohttp's parser never saw the body it would otherwise expect.

Only plain-TCP bodies of a known length take this path (TLS, chunked bodies and small ones go
through aiohttp); the block is still visible only after its md5 matched (store.PutTransaction).
"""

from __future__ import annotations

import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

from aiohttp import web

from ..keep.errors import KeepError
from .http import CHUNK

DIRECT_MIN = 1 << 20  # smaller bodies are not worth a connection of their own
SLOTS = 4  # pieces in flight per body: one arriving, one hashed, one written, one spare
KEPT_SLOT_SETS = 8  # reused between bodies; more concurrent bodies allocate and drop theirs


class ClientGone(KeepError):
    status = 499


class Lanes(Protocol):
    def hash_chunk(self, chunk: memoryview) -> None: ...

    def write_chunk(self, chunk: memoryview) -> None: ...


# the threads that wait on bodies: not the event loop's default executor, which every other handler
# needs, since a client that stalls holds its thread for the whole body timeout (keepstore caps
# concurrent PUTs at max_concurrent_puts, 32 by default)
RECEIVERS = ThreadPoolExecutor(64, "put-receive")
_free_slots: list[list[bytearray]] = []
_free_lock = threading.Lock()


def _take_slots() -> list[bytearray]:
    with _free_lock:
        if _free_slots:
            return _free_slots.pop()
    return [bytearray(CHUNK) for _ in range(SLOTS)]


def _give_back(slots: list[bytearray]) -> None:
    with _free_lock:
        if len(_free_slots) < KEPT_SLOT_SETS:
            _free_slots.append(slots)


class DirectBody:
    """The socket of a request whose body is read here rather than by aiohttp (see the module)."""

    def __init__(self, request: web.Request, first: bytes, sock: socket.socket):
        self.request, self.first, self.sock = request, first, sock

    @classmethod
    def take(cls, request: web.Request) -> DirectBody | None:
        """The request's connection taken from aiohttp, with the body bytes it had read already;
        None if this body is better left to aiohttp."""
        transport, length = request.transport, request.content_length
        if transport is None or length is None or length < DIRECT_MIN or \
                "Transfer-Encoding" in request.headers or transport.get_extra_info("sslcontext") is not None:
            return None
        raw = transport.get_extra_info("socket")
        if raw is None or raw.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        pieces = []
        # what aiohttp read already; draining it may let its paused parser hand over more
        while piece := request.content.read_nowait():
            pieces.append(piece)
        request.protocol.pause_reading()  # from now on nothing reads this socket but us
        request.protocol.close()  # and the connection ends with this request
        sock = socket.socket(fileno=os.dup(raw.fileno()))
        return cls(request, b"".join(pieces), sock)

    def receive(self, length: int, into: Lanes, stall_seconds: float) -> None:
        """Blocking (a worker thread): the whole body, each piece handed to `into` in order."""
        slots = _take_slots()
        self.sock.settimeout(stall_seconds)
        try:
            with ThreadPoolExecutor(1, "put-md5") as hashing, ThreadPoolExecutor(1, "put-write") as writing:
                busy: list[list[Future[None]]] = [[] for _ in slots]
                first = memoryview(self.first)
                pending = [hashing.submit(into.hash_chunk, first), writing.submit(into.write_chunk, first)]
                received, k = len(first), 0
                try:
                    while received < length:
                        slot = k % len(slots)
                        for done in busy[slot]:  # this buffer's last piece is hashed and written
                            done.result()
                        view = memoryview(slots[slot])[: min(CHUNK, length - received)]
                        self._fill(view, received, length)
                        received += len(view)
                        busy[slot] = [hashing.submit(into.hash_chunk, view), writing.submit(into.write_chunk, view)]
                        k += 1
                finally:
                    for done in pending + [f for futures in busy for f in futures]:
                        done.exception()  # wait: the buffers are in use until then
                for done in pending + [f for futures in busy for f in futures]:
                    done.result()
        finally:
            _give_back(slots)

    def _fill(self, view: memoryview, received: int, length: int) -> None:
        got = 0
        while got < len(view):
            try:
                n = self.sock.recv_into(view[got:])
            except TimeoutError:
                raise ClientGone(f"client sent nothing for {self.sock.gettimeout():g} s") from None
            except OSError:
                n = 0
            if not n:
                raise ClientGone(f"client went away after {received + got} of {length} bytes")
            got += n

    def release(self) -> None:
        """Hand the connection back to aiohttp, only to answer and close it: it waits for no more of
        this body, and ignores whatever still comes (a connection marked to close drops its data)."""
        self.sock.close()
        self.request.content.feed_eof()
