"""md5 objects whose work is hashed in lanes with the other blocks being hashed at the same moment.

A relay or a reader has several blocks in flight, each hashed piece by piece in its own thread. One
message's md5 cannot be split, but independent messages can share one run of SIMD lanes
(`_md5lanes.c`): 3.9x hashlib's rate with 4 at once, 5.5x with 8, 10.5x with 16, the same with one
(benchmarks/md5_lanes.py). So each `update` hands its whole 64-byte chunks to a shared engine:
whichever thread finds it idle hashes everything waiting (its own piece and the others'), the rest
wait for their piece to be done — a batch forms by itself whenever hashing is what they queue for.

Without the compiled part (not built, or a CPU with neither AVX-512 nor AVX2) `new_md5()` is hashlib's md5.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Callable
from typing import Any

try:
    from . import _md5lanes

    LANES_AVAILABLE = bool(_md5lanes.available())
except ImportError:  # built without it (`setup.py` marks it optional)
    LANES_AVAILABLE = False

MAX_LANES = 16
LANES_MIN = 1 << 20  # md5_hex of less (a small file's block) is hashlib's at once: a lane would save nothing
_NOTHING = memoryview(b"")
_INIT = struct.pack("=4I", 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476)


class LaneFailure(RuntimeError):
    """Hashing a batch failed: raised in every thread whose piece was in it, each its own (an
    exception shared across threads would hold the frames, and so the buffers, of all of them)."""


class _Piece:
    __slots__ = ("data", "done", "failed", "state")

    def __init__(self, state: bytearray, data: memoryview):
        self.state, self.data, self.done = state, data, False
        self.failed: str | None = None


class LaneEngine:
    """Pieces from any thread, hashed together. The caller whose piece is waiting and finds no one
    hashing hashes a batch (oldest first, up to 16 lanes) with the GIL released, then wakes the
    others; a caller whose piece is done returns. The main thread hashes its pieces alone and never
    waits here: it is where signals (Ctrl-C) and an event loop run, and neither may be held up by,
    or break off, a batch of other threads' pieces."""

    def __init__(self, advance: Callable[[list[bytearray], list[memoryview]], None] | None = None):
        self._advance = advance or _md5lanes.advance
        self._waiting: list[_Piece] = []
        self._hashing = False
        self._changed = threading.Condition()

    def hash(self, state: bytearray, data: memoryview) -> None:
        if threading.current_thread() is threading.main_thread():
            self._advance([state], [data])
            return
        piece = _Piece(state, data)
        with self._changed:
            self._waiting.append(piece)
            while not piece.done:
                if self._hashing:
                    self._changed.wait()
                    continue
                batch, self._waiting = self._waiting[:MAX_LANES], self._waiting[MAX_LANES:]
                self._hashing = True
                self._changed.release()
                failed = None
                try:
                    self._advance([p.state for p in batch], [p.data for p in batch])
                except BaseException as exc:  # each caller in the batch hears it, none waits forever
                    failed = f"{type(exc).__name__}: {exc}"
                finally:
                    self._changed.acquire()
                    self._hashing = False
                    for p in batch:
                        p.done, p.failed, p.data = True, failed, _NOTHING  # no buffer held past its batch
                    self._changed.notify_all()
        if piece.failed is not None:
            raise LaneFailure(f"md5 in lanes failed ({piece.failed}): the digest is not known")


_engine = LaneEngine() if LANES_AVAILABLE else None
if _engine is not None:  # a child forked while another thread held the engine's lock gets its own
    os.register_at_fork(after_in_child=lambda: globals().update(_engine=LaneEngine()))


class LaneMd5:
    """hashlib's md5 interface (update, digest, hexdigest) over the shared lane engine."""

    name = "md5"
    digest_size = 16

    def __init__(self, engine: LaneEngine | None = None):
        if (engine or _engine) is None:
            raise RuntimeError("md5 lanes are not available here: use new_md5()")
        self._own_engine = engine  # None: the process's, looked up at each piece (a forked child has its own)
        self._state = bytearray(_INIT)
        self._tail = bytearray()  # the last < 64 bytes, not yet a whole chunk
        self._length = 0
        self._lock = threading.Lock()  # as hashlib's: updates from two threads land one after the other

    def _hash(self, state: bytearray, data: memoryview) -> None:
        engine = self._own_engine or _engine
        assert engine is not None
        engine.hash(state, data)

    def update(self, data: Any) -> None:
        view = memoryview(data).cast("B")
        with self._lock:
            self._length += len(view)
            if self._tail:
                take = min(64 - len(self._tail), len(view))
                self._tail += view[:take]
                view = view[take:]
                if len(self._tail) < 64:
                    return
                self._hash(self._state, memoryview(self._tail))
                self._tail = bytearray()
            whole = len(view) // 64 * 64
            if whole:
                self._hash(self._state, view[:whole])
            self._tail = bytearray(view[whole:])

    def digest(self) -> bytes:
        with self._lock:
            state = bytearray(self._state)  # digest() may be asked again, or followed by more updates
            tail = self._tail + b"\x80"
            tail += bytes((56 - len(tail)) % 64) + struct.pack("<Q", self._length * 8)
        self._hash(state, memoryview(tail))
        return struct.pack("<4I", *struct.unpack("=4I", state))

    def hexdigest(self) -> str:
        return self.digest().hex()


def new_md5() -> Any:
    """An md5 object for a block: lanes shared with the other blocks being hashed where this CPU
    has them (AVX-512, or AVX2 at about half the rate), hashlib's otherwise."""
    return LaneMd5() if _engine is not None else hashlib.md5()


def md5_hex(data: Any) -> str:
    """A whole block's md5, in lanes with whatever else is being hashed at the moment."""
    if len(data) < LANES_MIN:
        return hashlib.md5(data).hexdigest()
    hasher = new_md5()
    hasher.update(data)
    return str(hasher.hexdigest())
