"""One contract, every volume driver (as Arvados' volume_generic_test runs one suite against each):
the directory driver on a temporary directory and the S3 driver on a real moto S3 server process.
A new driver passes by being added to the `volume` fixture."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from archipelago.config import VolumeConfig
from archipelago.keep.errors import BlockNotFound, ReadOnly
from archipelago.keepstore.volumes import Volume, volume_from_config


@pytest.fixture(params=["directory", "s3"])
def make_volume(request, tmp_path: Path):
    """make_volume(read_only=False) -> a fresh, empty volume of the driver under test (same storage)."""
    if request.param == "directory":
        settings = {"driver": "directory", "root": str(tmp_path / "vol"), "fsync": False}
    else:
        settings = request.getfixturevalue("s3_bucket")

    def make(read_only: bool = False) -> Volume:
        return volume_from_config(VolumeConfig.model_validate({**settings, "uuid": "zzzzz-nyw5e-000000000000001",
                                                               "read_only": read_only}))

    return make


def store(volume: Volume, data: bytes) -> str:
    md5 = hashlib.md5(data).hexdigest()
    writer = volume.writer(md5)
    for start in range(0, len(data), 1000):
        writer.write(data[start : start + 1000])
    writer.commit()
    return md5


def read(volume: Volume, md5: str) -> bytes:
    return volume.read_all(md5)


def test_a_committed_block_reads_back_whole(make_volume):
    volume = make_volume()
    data = os.urandom(4567)
    md5 = store(volume, data)
    assert read(volume, md5) == data
    reader = volume.open(md5)
    try:
        assert reader.size == len(data) and reader.read(10) == data[:10]
    finally:
        reader.close()
    assert volume.mtime_ns(md5) is not None


def test_a_block_is_invisible_until_committed_and_gone_if_aborted(make_volume):
    volume = make_volume()
    data = b"half-written"
    md5 = hashlib.md5(data).hexdigest()
    writer = volume.writer(md5)
    writer.write(data[:4])
    assert volume.mtime_ns(md5) is None
    with pytest.raises(BlockNotFound):
        volume.open(md5)
    writer.abort()
    assert volume.mtime_ns(md5) is None and not [e for e in volume.index() if e.md5 == md5]


def test_a_missing_block_is_not_found(make_volume):
    volume = make_volume()
    with pytest.raises(BlockNotFound):
        volume.open("0" * 32)
    assert volume.mtime_ns("0" * 32) is None


def test_the_index_lists_blocks_with_sizes_by_prefix(make_volume):
    volume = make_volume()
    stored = {store(volume, os.urandom(100 + n)): 100 + n for n in range(5)}
    listed = {e.md5: e.size for e in volume.index()}
    assert listed == stored
    some = next(iter(stored))
    assert {e.md5 for e in volume.index(some[:2])} == {m for m in stored if m.startswith(some[:2])}


def test_touch_moves_the_mtime_forward(make_volume):
    volume = make_volume()
    md5 = store(volume, b"touch me")
    before = volume.mtime_ns(md5)
    time.sleep(1.1)  # S3 keeps whole seconds
    volume.touch(md5)
    after = volume.mtime_ns(md5)
    assert before is not None and after is not None and after > before


def test_trash_hides_untrash_restores_and_emptying_deletes_when_due(make_volume):
    volume = make_volume()
    kept, dropped = store(volume, b"kept"), store(volume, b"dropped")
    now = time.time()
    volume.trash(kept, now + 3600)
    volume.trash(dropped, now - 1)
    for md5 in (kept, dropped):
        assert volume.mtime_ns(md5) is None
        with pytest.raises(BlockNotFound):
            volume.open(md5)
    assert volume.empty_trash(now) == 1
    assert volume.untrash(kept) is True and read(volume, kept) == b"kept"
    assert volume.untrash(dropped) is False
    with pytest.raises(BlockNotFound):
        volume.trash("0" * 32, now)


def test_a_quarantined_block_is_never_served_and_can_be_stored_again(make_volume):
    volume = make_volume()
    md5 = store(volume, b"rotten")
    volume.quarantine(md5)
    with pytest.raises(BlockNotFound):
        volume.open(md5)
    store(volume, b"rotten")
    assert read(volume, md5) == b"rotten"


def test_a_read_only_volume_refuses_writes_but_serves_reads(make_volume):
    md5 = store(make_volume(), b"already there")
    volume = make_volume(read_only=True)
    assert read(volume, md5) == b"already there"
    with pytest.raises(ReadOnly):
        writer = volume.writer(hashlib.md5(b"new").hexdigest())
        writer.write(b"new")
        writer.commit()
