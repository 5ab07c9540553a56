import hashlib

from archipelago.keep.cache import BlockCache


def block(n: int, size: int = 100) -> tuple[str, bytes]:
    data = bytes([n % 256]) * size
    return hashlib.md5(data).hexdigest(), data


def test_memory_lru_is_bounded():
    cache = BlockCache(memory_bytes=250)
    (a, da), (b, db), (c, dc) = block(1), block(2), block(3)
    cache.put(a, da)
    cache.put(b, db)
    assert cache.get(a) == da  # a is now most recently used
    cache.put(c, dc)  # evicts b
    assert cache.get(b) is None and cache.get(a) == da and cache.get(c) == dc
    assert cache.hits == 3 and cache.misses == 1


def test_disk_tier_survives_restart_and_drops_corrupt_entries(tmp_path):
    cache = BlockCache(memory_bytes=0, disk_dir=tmp_path, disk_bytes=250)
    for n in range(3):
        cache.put(*block(n))
    assert len(list(tmp_path.iterdir())) == 2  # bounded: the oldest went
    fresh = BlockCache(memory_bytes=0, disk_dir=tmp_path, disk_bytes=250)
    md5, data = block(2)
    assert fresh.get(md5) == data
    (tmp_path / md5).write_bytes(b"garbage")
    assert BlockCache(memory_bytes=0, disk_dir=tmp_path, disk_bytes=250).get(md5) is None
    assert not (tmp_path / md5).exists()


def test_a_streamed_entry_is_invisible_until_committed_and_gone_when_aborted(tmp_path):
    cache = BlockCache(memory_bytes=0, disk_dir=tmp_path, disk_bytes=1000)
    md5, data = block(7)
    writer = cache.writer(md5)
    writer.write(data[:40])
    assert cache.disk_path(md5) is None and cache.get(md5) is None  # half a block is never visible
    writer.write(data[40:])
    assert writer.file.read() == data  # what was written can be sent while writing goes on
    writer.commit()
    assert cache.disk_path(md5).read_bytes() == data
    other_md5, other = block(8)
    aborted = cache.writer(other_md5)
    aborted.write(other)
    aborted.abort()
    assert cache.disk_path(other_md5) is None and sorted(p.name for p in tmp_path.iterdir()) == [md5]


def test_writes_interrupted_by_a_crash_are_cleared_at_start(tmp_path):
    md5, data = block(9)
    BlockCache(memory_bytes=0, disk_dir=tmp_path, disk_bytes=1000).writer(md5).write(data)  # never committed
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
    fresh = BlockCache(memory_bytes=0, disk_dir=tmp_path, disk_bytes=1000)
    assert list(tmp_path.iterdir()) == [] and fresh.disk_path(md5) is None


def test_a_remote_block_opened_from_the_cache_reads_whole_even_if_evicted_meanwhile(tmp_path):
    from archipelago.config import parse_config
    from archipelago.formats.locator import Locator
    from archipelago.keepstore.remote_blocks import RemoteBlocks

    config = parse_config({"cluster_id": "z1111", "keepstore": {"remote_cache_dir": str(tmp_path),
                                                                "remote_cache_bytes": 150}})
    remote = RemoteBlocks(config)
    md5, data = block(3)
    remote.cache.put(md5, data)
    locator = Locator.parse(f"{md5}+{len(data)}")
    opened = remote.open_cached(locator)
    remote.cache.put(*block(4))  # over the bound: the first block is evicted, its file unlinked
    assert remote.cached(locator) is None and not (tmp_path / md5).exists()
    with opened:
        assert opened.read() == data
    assert remote.open_cached(locator) is None
