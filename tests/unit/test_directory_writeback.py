"""A directory volume that fsyncs writes blocks with O_DIRECT where it can (no page-cache copy), and
otherwise asks the disk to start writing while the body still arrives, so the fsync before the
rename waits for the tail only; what is visible, and when, does not change."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

import pytest

from archipelago.keep.errors import BlockNotFound
from archipelago.keepstore.volumes import directory
from archipelago.keepstore.volumes.base import fast_hasher
from archipelago.keepstore.volumes.directory import CHECKSUM_XATTR, STAGE_BYTES, WRITEBACK_STEP, DirectoryVolume


@pytest.fixture
def writebacks(monkeypatch) -> list[tuple[int, int]]:
    calls: list[tuple[int, int]] = []
    real = directory.start_writeback

    def record(fd: int, offset: int, length: int) -> None:
        calls.append((offset, length))
        real(fd, offset, length)  # the real call too: it must accept what we ask

    monkeypatch.setattr(directory, "start_writeback", record)
    return calls


def test_writeback_starts_in_contiguous_steps_and_the_block_is_visible_only_after_commit(tmp_path: Path,
                                                                                           writebacks, monkeypatch):
    real_open = directory._open_temp
    monkeypatch.setattr(directory, "_open_temp", lambda path, direct: real_open(path, False))  # no O_DIRECT here
    volume = DirectoryVolume("zzzzz-nyw5e-000000000000000", root=tmp_path)
    data = os.urandom(3 * WRITEBACK_STEP + 12345)
    md5 = hashlib.md5(data).hexdigest()
    writer = volume.writer(md5)
    piece = 1_000_003  # pieces that straddle the steps
    for start in range(0, len(data), piece):
        writer.write(data[start:start + piece])
    with pytest.raises(BlockNotFound):
        volume.open(md5)
    writer.commit()
    assert volume.read_all(md5) == data
    assert len(writebacks) >= 2
    covered = 0
    for offset, length in writebacks:
        assert offset == covered and length >= WRITEBACK_STEP
        covered += length
    assert len(data) - WRITEBACK_STEP - piece < covered <= len(data)  # only a tail is left to the fsync


def test_no_writeback_is_asked_of_a_volume_that_does_not_fsync(tmp_path: Path, writebacks):
    volume = DirectoryVolume("zzzzz-nyw5e-000000000000001", root=tmp_path, fsync=False)
    data = os.urandom(2 * WRITEBACK_STEP)
    md5 = hashlib.md5(data).hexdigest()
    writer = volume.writer(md5)
    writer.write(data)
    writer.commit()
    assert volume.read_all(md5) == data and writebacks == []


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, STAGE_BYTES, STAGE_BYTES + 1, 2 * STAGE_BYTES + 12345])
def test_o_direct_writes_are_exact_checksummed_and_invisible_until_commit(tmp_path: Path, size: int):
    volume = DirectoryVolume("zzzzz-nyw5e-000000000000002", root=tmp_path)
    data = os.urandom(size)
    md5 = hashlib.md5(data).hexdigest()
    writer = volume.writer(md5)
    assert fcntl.fcntl(writer._fd, fcntl.F_GETFL) & os.O_DIRECT  # this filesystem allows it
    for start in range(0, size, 777_777):  # pieces that straddle the aligned stages
        writer.write(data[start:start + 777_777])
    with pytest.raises(BlockNotFound):
        volume.open(md5)
    writer.commit()
    assert volume.read_all(md5) == data  # the padding of the last piece is cut off
    assert os.getxattr(tmp_path / md5[:3] / md5, CHECKSUM_XATTR).decode() == fast_hasher(data).hexdigest()


def test_an_aborted_o_direct_write_leaves_nothing(tmp_path: Path):
    volume = DirectoryVolume("zzzzz-nyw5e-000000000000003", root=tmp_path)
    data = os.urandom(STAGE_BYTES + 100)
    writer = volume.writer(hashlib.md5(data).hexdigest())
    writer.write(data)
    writer.abort()
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
