"""keep/md5.py: md5 in SIMD lanes, shared by the blocks being hashed at once, equal to hashlib's."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archipelago.keep import md5 as lanes
from archipelago.keep.md5 import _INIT, LANES_AVAILABLE, LaneEngine, LaneFailure, LaneMd5, md5_hex, new_md5

needs_lanes = pytest.mark.skipif(not LANES_AVAILABLE, reason="md5 lanes not built, or neither AVX-512 nor AVX2 here")


def test_the_lanes_are_built_wherever_they_can_run() -> None:
    """`setup.py` marks the extension optional; a build that broke must not go unnoticed on a
    machine that could run it."""
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    simd = {"avx512f", "avx512vl"} <= set(flags) or "avx2" in flags
    if not (simd and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no AVX-512 or AVX2, or no C compiler: hashlib alone is the design here")
    assert LANES_AVAILABLE
    assert isinstance(new_md5(), LaneMd5)


@needs_lanes
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=4000), st.lists(st.integers(0, 4000), max_size=8))
def test_any_split_of_any_message_gives_hashlibs_digest(data: bytes, cuts: list[int]) -> None:
    hasher = LaneMd5()
    start = 0
    for cut in sorted(min(c, len(data)) for c in cuts):
        hasher.update(data[start:cut])
        start = cut
    hasher.update(memoryview(data)[start:])
    assert hasher.hexdigest() == hashlib.md5(data).hexdigest()
    assert hasher.hexdigest() == hashlib.md5(data).hexdigest()  # asked twice: the same
    hasher.update(b"more")
    assert hasher.hexdigest() == hashlib.md5(data + b"more").hexdigest()


@needs_lanes
def test_blocks_hashed_at_once_share_lanes_and_each_gets_its_own_digest() -> None:
    """Eight threads hash eight different messages; the first batch is held until the other seven
    have queued, so they must be hashed together — and each digest is still its own message's."""
    from archipelago.keep import _md5lanes

    batches: list[int] = []

    def advance(states: list[bytearray], buffers: list[memoryview]) -> None:
        if not batches:
            deadline = time.monotonic() + 10
            while len(engine._waiting) < 7 and time.monotonic() < deadline:
                time.sleep(0.001)
        batches.append(len(states))
        _md5lanes.advance(states, buffers)

    engine = LaneEngine(advance)
    messages = [bytes([k]) * (64 * 1024 + 64 * k + k) for k in range(8)]
    digests: dict[int, str] = {}

    def hash_one(k: int) -> None:
        hasher = LaneMd5(engine)
        hasher.update(messages[k])
        digests[k] = hasher.hexdigest()

    threads = [threading.Thread(target=hash_one, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert digests == {k: hashlib.md5(m).hexdigest() for k, m in enumerate(messages)}
    assert max(batches) >= 7  # the seven that queued behind the first went as one batch


def test_a_failing_batch_fails_every_caller_in_it_and_hangs_none() -> None:
    def advance(states: list[bytearray], buffers: list[memoryview]) -> None:
        raise MemoryError("no lanes today")

    engine = LaneEngine(advance)
    errors: list[str] = []

    def hash_one() -> None:
        try:
            LaneMd5(engine).update(bytes(640))
        except LaneFailure as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=hash_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 4 and all("MemoryError: no lanes today" in error for error in errors)


@needs_lanes
def test_the_extension_refuses_what_it_cannot_hash_correctly() -> None:
    from archipelago.keep import _md5lanes

    with pytest.raises(ValueError, match="16 bytes"):
        _md5lanes.advance([bytearray(15)], [bytes(64)])
    with pytest.raises(ValueError, match="multiple of 64"):
        _md5lanes.advance([bytearray(_INIT)], [bytes(65)])
    with pytest.raises(ValueError, match="at most 16"):
        _md5lanes.advance([bytearray(_INIT)] * 17, [bytes(64)] * 17)
    with pytest.raises(ValueError, match="as many states as buffers"):
        _md5lanes.advance([bytearray(_INIT)], [])
    with pytest.raises(BufferError):
        _md5lanes.advance([bytes(_INIT)], [bytes(64)])  # a state it could not write


def test_without_the_lanes_it_is_hashlib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lanes, "_engine", None)
    assert type(new_md5()) is type(hashlib.md5())
    assert md5_hex(b"abc") == hashlib.md5(b"abc").hexdigest()
    with pytest.raises(RuntimeError, match="not available"):
        LaneMd5()


@needs_lanes
def test_whole_blocks_large_and_small_get_hashlibs_digest() -> None:
    for data in (b"", b"abc", bytes(range(256)) * 4096 + b"x", bytearray(3 << 20)):
        assert md5_hex(data) == hashlib.md5(data).hexdigest()
        assert md5_hex(memoryview(data)) == hashlib.md5(data).hexdigest()


def _in_a_thread(function, *args):
    result: list = []
    thread = threading.Thread(target=lambda: result.append(function(*args)))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    return result[0] if result else None


@needs_lanes
def test_the_main_thread_never_waits_for_other_threads_batches() -> None:
    """The main thread runs the event loop and takes Ctrl-C: a batch of others' pieces must neither
    hold it up nor be broken off by it."""
    from archipelago.keep import _md5lanes

    release = threading.Event()

    def advance(states: list[bytearray], buffers: list[memoryview]) -> None:
        if threading.current_thread() is not threading.main_thread():
            release.wait(10)  # another thread's batch, stuck for as long as the test wants
        _md5lanes.advance(states, buffers)

    engine = LaneEngine(advance)
    stuck = threading.Thread(target=lambda: LaneMd5(engine).update(bytes(1 << 16)))
    stuck.start()
    try:
        hasher = LaneMd5(engine)
        hasher.update(b"x" * 100_000)
        assert hasher.hexdigest() == hashlib.md5(b"x" * 100_000).hexdigest()
        assert stuck.is_alive()  # done while the other thread's batch was still stuck
    finally:
        release.set()
        stuck.join(30)


@needs_lanes
def test_two_threads_updating_one_hasher_land_one_after_the_other() -> None:
    """As with hashlib: two updates of one hasher at once are hashed one after the other, never
    from the same state in one batch (where the last write would win)."""
    from archipelago.keep import _md5lanes

    first = threading.Event()

    def advance(states: list[bytearray], buffers: list[memoryview]) -> None:
        if not first.is_set():  # a third hasher's batch keeps the engine busy while both updates queue
            first.set()
            deadline = time.monotonic() + 0.5
            while len(engine._waiting) < 2 and time.monotonic() < deadline:
                time.sleep(0.001)
        _md5lanes.advance(states, buffers)

    engine = LaneEngine(advance)
    blocker = threading.Thread(target=LaneMd5(engine).update, args=(bytes(64),))
    blocker.start()
    first.wait(10)
    hasher = LaneMd5(engine)
    a, b = b"a" * (1 << 16), b"b" * (1 << 16)
    threads = [threading.Thread(target=hasher.update, args=(part,)) for part in (a, b)]
    for thread in [*threads]:
        thread.start()
    for thread in [blocker, *threads]:
        thread.join(30)
    assert _in_a_thread(hasher.hexdigest) in (hashlib.md5(a + b).hexdigest(), hashlib.md5(b + a).hexdigest())


@needs_lanes
def test_a_failed_batch_holds_no_buffer() -> None:
    """Once the failure is handled, the buffer is free at once (a relay closes spare slots): no
    cycle through a shared exception keeps it until the garbage collector runs."""
    import gc
    import mmap

    def advance(states: list[bytearray], buffers: list[memoryview]) -> None:
        raise OSError("no lanes today")

    engine = LaneEngine(advance)
    slot = mmap.mmap(-1, 1 << 16)
    failures: list[str] = []

    def read_and_fail() -> None:
        try:
            LaneMd5(engine).update(memoryview(slot))
        except LaneFailure as exc:
            failures.append(str(exc))

    gc.disable()
    try:
        _in_a_thread(read_and_fail)
        assert failures
        slot.close()  # BufferError if the failed batch still held a view of it
    finally:
        gc.enable()


@needs_lanes
def test_a_forked_child_hashes_with_its_own_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forked while a batch was being hashed (the parent's engine is busy for good in the child): a
    hasher made before the fork works in the child's threads."""
    import os
    import signal

    wedged = LaneEngine()
    wedged._hashing = True
    monkeypatch.setattr(lanes, "_engine", wedged)
    hasher = LaneMd5()
    pid = os.fork()
    if pid == 0:  # the child: alive for at most 20 s, exit 0 only with the right digest
        signal.alarm(20)
        try:
            hasher_digest = _in_a_thread(lambda: (hasher.update(bytes(1 << 16)), hasher.hexdigest())[1])
            os._exit(0 if hasher_digest == hashlib.md5(bytes(1 << 16)).hexdigest() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@needs_lanes
def test_a_sequence_that_fails_is_its_own_error() -> None:
    from archipelago.keep import _md5lanes

    class Failing:
        def __len__(self) -> int:
            return 1

        def __getitem__(self, index: int) -> bytearray:
            raise LookupError("this sequence fails")

    class Recording:  # Python code that must not run once an exception is set
        def __init__(self) -> None:
            self.asked: list[int] = []

        def __len__(self) -> int:
            return 1

        def __getitem__(self, index: int) -> bytes:
            self.asked.append(index)
            return bytes(64)

    buffers = Recording()
    with pytest.raises(LookupError, match="this sequence fails"):
        _md5lanes.advance(Failing(), buffers)
    assert buffers.asked == []
    with pytest.raises(LookupError, match="this sequence fails"):
        _md5lanes.advance([bytearray(_INIT)], Failing())


def _has_avx2() -> bool:
    return Path("/proc/cpuinfo").exists() and "avx2" in Path("/proc/cpuinfo").read_text().split()


@needs_lanes
@pytest.mark.parametrize("avx2_only", [False, True], ids=["best", "avx2"])
@pytest.mark.parametrize("lanes", range(1, 17))
def test_every_width_hashes_every_lane_as_hashlib_does(lanes: int, avx2_only: bool) -> None:
    """The 4-, 8- and 16-lane AVX-512 kernels and the AVX2 one (what a CPU without AVX-512 runs),
    lanes of different lengths (a lane that finishes early is kept while the others go on)."""
    if avx2_only and not _has_avx2():
        pytest.skip("no AVX2 on this CPU")
    import random
    import struct

    from archipelago.keep import _md5lanes

    rng = random.Random(lanes)
    messages = [rng.randbytes(rng.randrange(0, 5000)) for _ in range(lanes)]
    states = [bytearray(_INIT) for _ in messages]
    _md5lanes.advance(states, [m[: len(m) // 64 * 64] for m in messages], avx2_only)
    tails = []
    for m in messages:
        tail = m[len(m) // 64 * 64:] + b"\x80"
        tails.append(tail + bytes((56 - len(tail)) % 64) + struct.pack("<Q", len(m) * 8))
    _md5lanes.advance(states, tails, avx2_only)
    digests = [struct.pack("<4I", *struct.unpack("=4I", state)).hex() for state in states]
    assert digests == [hashlib.md5(m).hexdigest() for m in messages]
