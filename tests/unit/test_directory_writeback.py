"""A directory volume asks the disk to start writing a block while its body still arrives, so the
fsync before the rename waits for the tail only; what is visible, and when, does not change."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from archipelago.keep.errors import BlockNotFound
from archipelago.keepstore.volumes import directory
from archipelago.keepstore.volumes.directory import WRITEBACK_STEP, DirectoryVolume


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
                                                                                           writebacks):
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
