"""A keepstore relaying a block from another cluster (keepstore/relay_pipe.py) sends each piece on
while it is still being hashed and cached, so these check in process what must still hold: a block
whose bytes do not match its md5 — wrong in its first, a middle or its last piece, or cut short by
the remote — never reaches the caller whole and is never cached; a good one is cached exactly. The
same over real clusters: tests/integration/test_federation.py (a relay never passes on ...)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from pathlib import Path

import pytest

from archipelago.keep.cache import BlockCache
from archipelago.keepstore.http import CHUNK
from archipelago.keepstore.relay_pipe import RelayPipe, RemoteCutShort, send_cached


class Caller:
    """Stands in for the caller's response: what was sent to it."""

    def __init__(self) -> None:
        self.received = bytearray()

    async def write(self, data: memoryview) -> None:
        self.received += data
        await asyncio.sleep(0)


class RemoteBody(io.RawIOBase):
    """The remote cluster's answer, delivered in uneven pieces as a socket does."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def readinto(self, view) -> int:  # type: ignore[override]
        n = min(len(view), 300_007, len(self.data) - self.at)
        view[:n] = self.data[self.at:self.at + n]
        self.at += n
        return n


def relay(tmp_path: Path, sent: bytes, md5: str, size: int) -> tuple[bool | Exception, Caller, BlockCache]:
    cache = BlockCache(memory_bytes=0, disk_dir=tmp_path / "cache", disk_bytes=1 << 30)
    entry = cache.writer(md5)
    pipe = RelayPipe(RemoteBody(sent), size, md5, entry)
    caller = Caller()

    verified_with: list[int] = []

    async def commit() -> None:  # what the relay does: the entry visible before the last piece goes out
        entry.commit()
        verified_with.append(len(caller.received))

    async def go() -> bool:
        return await pipe.run(caller, commit)  # type: ignore[arg-type]

    try:
        outcome: bool | Exception = asyncio.run(go())
    except RemoteCutShort as exc:
        outcome = exc
    finally:
        pipe.close()
    if outcome is True:
        assert verified_with and verified_with[0] < max(size, 1)  # committed before the caller had it all
    else:
        assert not verified_with
        entry.abort()
    return outcome, caller, cache


@pytest.mark.parametrize("size", [1, CHUNK, 3 * CHUNK + 12345, 64 << 20])
def test_a_good_block_is_passed_on_whole_and_cached_exactly(tmp_path: Path, size: int):
    data = os.urandom(size)
    md5 = hashlib.md5(data).hexdigest()
    outcome, caller, cache = relay(tmp_path, data, md5, size)
    assert outcome is True and bytes(caller.received) == data
    path = cache.disk_path(md5)
    assert path is not None and path.read_bytes() == data


@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_corrupt_block_never_reaches_the_caller_whole_and_is_not_cached(tmp_path: Path, where: str):
    data = os.urandom(5 * CHUNK + 777)
    md5 = hashlib.md5(data).hexdigest()
    tampered = bytearray(data)
    tampered[{"first": 10, "middle": 2 * CHUNK + 5, "last": len(data) - 3}[where]] ^= 0xFF
    outcome, caller, cache = relay(tmp_path, bytes(tampered), md5, len(data))
    assert outcome is False
    assert len(caller.received) <= len(data) - 777  # the last piece was held back
    assert cache.disk_path(md5) is None
    assert [p for p in (tmp_path / "cache").iterdir()] == []  # no temp file left either


def test_a_remote_that_sends_less_than_it_announced_is_refused_and_not_cached(tmp_path: Path):
    data = os.urandom(3 * CHUNK)
    md5 = hashlib.md5(data).hexdigest()
    outcome, caller, cache = relay(tmp_path, data[: 2 * CHUNK + 100], md5, len(data))
    assert isinstance(outcome, RemoteCutShort)
    assert len(caller.received) < len(data) and cache.disk_path(md5) is None


@pytest.mark.parametrize("size", [1, 4097, CHUNK, 3 * CHUNK + 5])
def test_a_cached_block_is_sent_whole_and_a_truncated_one_is_not(tmp_path: Path, size: int):
    data = os.urandom(size)
    path = tmp_path / "entry"
    path.write_bytes(data)

    async def send(claimed: int) -> tuple[bool, bytes]:
        caller = Caller()
        with open(path, "rb") as handle:
            ok = await send_cached(caller, handle.fileno(), claimed)  # type: ignore[arg-type]
        return ok, bytes(caller.received)

    assert asyncio.run(send(size)) == (True, data)
    ok, received = asyncio.run(send(size + CHUNK))  # the file is shorter than the block it claims to be
    assert not ok and len(received) <= size


def test_an_empty_answer_passes_only_for_the_empty_block(tmp_path: Path):
    empty = hashlib.md5(b"").hexdigest()
    outcome, _, cache = relay(tmp_path / "a", b"", empty, 0)
    assert outcome is True and cache.disk_path(empty) is not None
    named = hashlib.md5(b"not empty").hexdigest()  # a remote answering Content-Length: 0 for it
    outcome, _, cache = relay(tmp_path / "b", b"", named, 0)
    assert outcome is False and cache.disk_path(named) is None
