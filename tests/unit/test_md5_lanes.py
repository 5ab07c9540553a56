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
from archipelago.keep.md5 import _INIT, LANES_AVAILABLE, LaneEngine, LaneMd5, md5_hex, new_md5

needs_lanes = pytest.mark.skipif(not LANES_AVAILABLE, reason="md5 lanes not built or no AVX-512 here")


def test_the_lanes_are_built_wherever_they_can_run() -> None:
    """`setup.py` marks the extension optional; a build that broke must not go unnoticed on a
    machine that could run it."""
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    if not ({"avx512f", "avx512vl"} <= set(flags) and (shutil.which("cc") or shutil.which("gcc"))):
        pytest.skip("no AVX-512 or no C compiler: hashlib alone is the design here")
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
    errors: list[BaseException] = []

    def hash_one() -> None:
        try:
            LaneMd5(engine).update(bytes(640))
        except MemoryError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hash_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not any(thread.is_alive() for thread in threads)
    assert len(errors) == 4


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
