"""The gateway's handlers in process (aiohttp on loopback in a thread, SQLite): registration signs
for the caller; residency applies to gateway-served blocks as to keepstore's; signatures are needed."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from archipelago.config import GatewayConfig
from archipelago.formats.signing import sign_locator
from archipelago.gateway.service import Gateway
from archipelago.keep.cache import BlockCache
from archipelago.keepstore.app import ServerThread
from tests.support.backends import single_cluster
from tests.support.keep_http import http

VISITOR = "v2/z2222-gj3su-0000000000visit/visitorsecret0123456789abcdefghijklmnopq"
GW = "z1111-bi6l4-gateway00000009"


@pytest.fixture
def served(tmp_path: Path):
    site = single_cluster(tmp_path)
    (tmp_path / "data").mkdir()
    gateway = GatewayConfig(driver="path", root=tmp_path / "data", listen="127.0.0.1:1", uuid=GW)
    app = Gateway(site.local.config, gateway, site.local.db.session, site.local.restricted_blocks,
                  registrant=site.local.gateway_registrant).app()
    with ServerThread(app) as server:
        yield site, tmp_path / "data", server.url


def register(url: str, token: str, path: str) -> dict:
    answer = http.request("POST", f"{url}/register", body=json.dumps({"path": path}).encode(),
                          headers={"Authorization": f"Bearer {token}"})
    assert answer.status == 200, answer.data
    *progress, last = answer.data.splitlines()  # JSON lines: the total, progress, then the result
    assert json.loads(progress[0])["total"] >= 0
    return json.loads(last)


def get(url: str, locator: str, token: str | None):
    return http.request("GET", f"{url}/{locator}", headers={"Authorization": f"Bearer {token}"} if token else {})


def signed_for(site, manifest: str, token: str) -> str:
    config = site.local.config.collections
    plain = manifest.split()[1].split("+A")[0]
    key = config.blob_signing_key.encode()
    return sign_locator(plain, token, int(time.time()) + 3600, config.blob_signing_ttl, key)


def test_residency_applies_to_gateway_blocks(served) -> None:
    site, data, url = served
    (data / "stays.txt").write_text("stays here\n")
    (data / "free.txt").write_text("may travel\n")
    stays = register(url, site.admin.token, "stays.txt")
    free = register(url, site.admin.token, "free.txt")
    site.local.create(site.admin, "collections", {"manifest_text": stays["manifest_text"], "residency": "cluster"})
    site.local.create(site.admin, "collections", {"manifest_text": free["manifest_text"]})
    mine = signed_for(site, stays["manifest_text"], site.admin.token)
    assert get(url, mine, site.admin.token).data == b"stays here\n"
    deadline = time.monotonic() + 10  # the residency list is refreshed every second, as keepstore's
    while (refused := get(url, signed_for(site, stays["manifest_text"], VISITOR), VISITOR)).status == 200:
        assert time.monotonic() < deadline, "the gateway never learned of the residency policy"
        time.sleep(0.1)
    assert refused.status == 403 and b"stays on cluster z1111" in refused.data
    assert get(url, signed_for(site, free["manifest_text"], VISITOR), VISITOR).data == b"may travel\n"


def test_reads_need_a_signature_and_registration_a_token(served) -> None:
    site, data, url = served
    (data / "x.txt").write_text("x\n")
    manifest = register(url, site.admin.token, "x.txt")["manifest_text"]
    locator = manifest.split()[1]
    assert f"+K@{GW}+A" in locator  # signed for the registering caller, the hint kept
    assert get(url, locator, None).status == 401
    assert get(url, locator.split("+A")[0], site.admin.token).status == 400  # unsigned: as keepstore answers
    assert http.request("POST", f"{url}/register", body=b'{"path": "x.txt"}').status == 401
    assert http.request("POST", f"{url}/register", body=b"not json",
                        headers={"Authorization": f"Bearer {site.admin.token}"}).status == 400


def test_a_block_read_twice_is_fetched_from_its_store_once(served) -> None:
    site, data, url = served
    (data / "twice.txt").write_text("read twice\n")
    manifest = register(url, site.admin.token, "twice.txt")["manifest_text"]
    locator = manifest.split()[1]
    assert get(url, locator, site.admin.token).data == b"read twice\n"
    (data / "twice.txt").unlink()  # the store no longer has it: only the cache can answer
    assert get(url, locator, site.admin.token).data == b"read twice\n"


def test_a_second_registration_reads_only_what_changed(served) -> None:
    import os

    site, data, url = served
    (data / "resume").mkdir()
    for name in ("a.txt", "b.txt"):
        (data / "resume" / name).write_text(f"{name} first\n")
    first = register(url, site.admin.token, "resume")
    # b.txt rewritten with its size and mtime kept (its version unchanged): not read again, so the
    # same blocks come back; a.txt truly changed: read again, new block
    stat = (data / "resume" / "b.txt").stat()
    (data / "resume" / "b.txt").write_text("b.txt FIRST\n")
    os.utime(data / "resume" / "b.txt", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    (data / "resume" / "a.txt").write_text("a.txt changed!\n")
    second = register(url, site.admin.token, "resume")
    first_b = [line for line in first["manifest_text"].split() if "+K@" in line][1].split("+A")[0]
    assert first_b in second["manifest_text"]  # b.txt's block, reused without reading
    assert second["manifest_text"] != first["manifest_text"]  # a.txt's new block
    # and the safety net: b.txt's bytes no longer match its block, so a read is refused
    locator = next(t for t in second["manifest_text"].split() if t.startswith(first_b[:32]))
    assert get(url, locator, site.admin.token).status == 502


def test_a_large_block_changed_where_the_store_cannot_tell_is_refused_by_its_checksum(served) -> None:
    """mtime and size kept, so the path store sees the same version: the checksum the gateway
    takes as the block arrives (md5 confirming) catches it before any byte is sent — a 502 naming
    the object, then stale."""
    import os

    site, data, url = served
    original = os.urandom(3 << 20)  # more than one read of the object
    (data / "big.bin").write_bytes(original)
    locator = register(url, site.admin.token, "big.bin")["manifest_text"].split()[1]
    stat = (data / "big.bin").stat()
    (data / "big.bin").write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    os.utime(data / "big.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    refused = get(url, locator, site.admin.token)
    assert refused.status == 502 and b"big.bin" in refused.data and b"no longer match" in refused.data
    (data / "big.bin").write_bytes(original)  # even put back, the object stays refused until registered again
    os.utime(data / "big.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert get(url, locator, site.admin.token).status == 502


def test_a_web_object_changed_since_registration_is_refused_before_any_byte(tmp_path: Path) -> None:
    """Reads are conditional on the version registered (If-Match on the web server's ETag): a
    changed object is a 502 naming it, its blocks stale, whatever its size."""
    from tests.support.http_ranges import range_server

    site = single_cluster(tmp_path)
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "ref.fa").write_bytes(b">chr1\nACGT\n" * 400_000)  # several chunks
    with range_server(tmp_path / "web") as web_url:
        gateway = GatewayConfig(driver="http", base_url=web_url, listen="127.0.0.1:1", uuid=GW)
        service = Gateway(site.local.config, gateway, site.local.db.session, site.local.restricted_blocks,
                          registrant=site.local.gateway_registrant)
        with ServerThread(service.app()) as server:
            locator = register(server.url, site.admin.token, "ref.fa")["manifest_text"].split()[1]
            assert len(get(server.url, locator, site.admin.token).data) == 4_400_000
            (tmp_path / "web" / "ref.fa").write_bytes(b">chr2\nTTTT\n" * 400_000)
            service.cache = BlockCache(0)  # the verified copy would answer: a fresh read
            refused = get(server.url, locator, site.admin.token)
            assert refused.status == 502 and b"ref.fa" in refused.data


def test_a_move_nominates_the_copies_it_left_and_only_unread_ones_are_released(served) -> None:
    from sqlalchemy import select

    from archipelago.db.models import GatewayBlock, ReleasedCopy
    from archipelago.gateway.release import Releaser

    site, data, _ = served
    (data / "archipelago-blocks").mkdir()
    block = "acbd18db4cc2f85cedef654fccc4a4d8+3"  # "foo", moved to the gateway earlier
    (data / "archipelago-blocks" / block[:32]).write_bytes(b"foo")
    with site.local.db.session() as session:
        session.add(GatewayBlock(gateway_uuid=GW, locator=block, object=f"archipelago-blocks/{block[:32]}",
                                 offset=0, length=3, version="v", stale=False))
    made = site.local.create(site.admin, "collections", {"manifest_text": f". {block}+K@{GW} 0:3:foo.txt\n"})
    site.local.update(site.admin, "collections", made["uuid"], {"manifest_text": f". {block} 0:3:foo.txt\n"})
    site.local.update(site.admin, "collections", made["uuid"],  # other content: not a move, nothing nominated
                      {"manifest_text": ". 37b51d194a7513e45b56f6524f2d51f2+3 0:3:bar.txt\n"})

    def nominated() -> list[tuple[str, str]]:
        with site.local.db.session() as session:
            return [(c.locator, c.place) for c in session.scalars(select(ReleasedCopy))]

    assert nominated() == [(block, GW)]
    config = site.local.config.model_copy(update={"gateways": [GatewayConfig(
        driver="path", root=data, listen="127.0.0.1:1", uuid=GW)]})
    releaser = Releaser(config, site.local.db.session)
    assert releaser.release_due() == []  # not yet: a signature made before the move may still be in use
    assert nominated() == [(block, GW)]
    later = time.time() + config.collections.blob_signing_ttl + 1
    still = site.local.create(site.admin, "collections", {"manifest_text": f". {block}+K@{GW} 0:3:again.txt\n"})
    assert releaser.release_due(later) == [] and nominated() == []  # read again by another collection: kept
    assert (data / "archipelago-blocks" / block[:32]).exists()
    site.local.update(site.admin, "collections", still["uuid"], {"manifest_text": f". {block} 0:3:again.txt\n"})
    with site.local.db.session() as session:  # one whose keepstore cannot be reached (none runs here)
        session.add(ReleasedCopy(locator="73feffa4b7f6bb68e44cf984c85f6e88+3", place="keep", since=0.0))
    assert releaser.release_due(later) == [(block, GW)]  # not held up by the other
    assert not (data / "archipelago-blocks" / block[:32]).exists()
    assert nominated() == [("73feffa4b7f6bb68e44cf984c85f6e88+3", "keep")]  # kept for the next round


def test_a_registration_cut_short_resumes_where_it_stopped(tmp_path: Path) -> None:
    """Each object's blocks are recorded as soon as it is read: when one object fails, a second
    registration reads only that one."""
    site = single_cluster(tmp_path)
    (tmp_path / "data" / "run").mkdir(parents=True)
    for name in ("a.txt", "b.txt", "bad.txt", "c.txt"):
        (tmp_path / "data" / "run" / name).write_text(f"{name}\n")
    service = Gateway(site.local.config, GatewayConfig(driver="path", root=tmp_path / "data", listen="127.0.0.1:1",
                                                       uuid=GW), site.local.db.session, site.local.restricted_blocks,
                      registrant=site.local.gateway_registrant)
    opened: list[str] = []
    failing = {"run/bad.txt"}
    store = service.store

    class Flaky:  # the real store, but one object fails to read the first time (a network error, say)
        def __getattr__(self, name: str):
            return getattr(store, name)

        def open(self, name: str, *args):
            opened.append(name)
            if name in failing:
                failing.clear()
                raise OSError("connection reset while reading")
            return store.open(name, *args)

    service.store = Flaky()
    with ServerThread(service.app()) as server:
        first = register(server.url, site.admin.token, "run")
        assert "connection reset" in first["errors"][0]
        opened.clear()
        second = register(server.url, site.admin.token, "run")
    assert opened == ["run/bad.txt"]  # the three read before were not read again
    assert second["objects"] == 4 and second["manifest_text"].count("+K@") == 4


def test_a_wrong_checksum_on_record_is_overruled_by_the_md5_and_re_recorded(served) -> None:
    """Reads are checked against the xxh3 taken at registration; when it disagrees, md5 decides
    whether the data or the record is wrong (as keepstore does with its blocks)."""
    from sqlalchemy import select, update

    from archipelago.db.models import GatewayBlock

    site, data, url = served
    (data / "fine.txt").write_text("the data is fine\n")
    locator = register(url, site.admin.token, "fine.txt")["manifest_text"].split()[1]
    plain = locator.split("+K@")[0]
    with site.local.db.session() as session:
        right = session.scalars(select(GatewayBlock.checksum).where(GatewayBlock.locator == plain)).one()
        session.execute(update(GatewayBlock).where(GatewayBlock.locator == plain).values(checksum="0" * 32))
    assert right and len(right) == 32  # taken at registration
    assert get(url, locator, site.admin.token).data == b"the data is fine\n"
    with site.local.db.session() as session:
        assert session.scalars(select(GatewayBlock.checksum).where(GatewayBlock.locator == plain)).one() == right


def test_a_block_moved_here_is_stored_only_if_its_body_hashes_to_its_name(served) -> None:
    site, data, url = served
    auth = {"Authorization": f"Bearer {site.admin.token}"}
    md5 = "acbd18db4cc2f85cedef654fccc4a4d8"  # of b"foo"
    refused = http.request("PUT", f"{url}/{md5}", body=b"bar", headers=auth)
    assert refused.status == 422 and not (data / "archipelago-blocks" / md5).exists()
    stored = http.request("PUT", f"{url}/{md5}", body=b"foo", headers=auth)
    assert stored.status == 200 and f"{md5}+3+K@{GW}+A" in stored.data.decode()
    assert (data / "archipelago-blocks" / md5).read_bytes() == b"foo"
    assert get(url, stored.data.decode().strip(), site.admin.token).data == b"foo"  # and served, checked


def test_a_changed_object_is_refused_naming_the_collections_that_read_it(served) -> None:
    """The collections affected are found by the block index (db/block_index.py), not a scan of
    every manifest; one that reads other blocks is not named."""
    site, data, url = served
    (data / "named.txt").write_text("read by two collections\n")
    (data / "other.txt").write_text("read by another\n")
    manifest = register(url, site.admin.token, "named.txt")["manifest_text"]
    first = site.local.create(site.admin, "collections", {"manifest_text": manifest})
    second = site.local.create(site.admin, "collections", {"manifest_text": manifest})
    other = site.local.create(site.admin, "collections",
                              {"manifest_text": register(url, site.admin.token, "other.txt")["manifest_text"]})
    (data / "named.txt").write_text("rewritten, another size\n")
    refused = get(url, manifest.split()[1], site.admin.token)
    assert refused.status == 502
    assert first["uuid"].encode() in refused.data and second["uuid"].encode() in refused.data
    assert other["uuid"].encode() not in refused.data


@pytest.mark.parametrize("limit", [1, 2])
def test_no_more_blocks_are_read_from_the_store_at_once_than_it_allows(tmp_path: Path, limit: int) -> None:
    """Each read takes a core here and in the store's server; more at once than cores cost more CPU
    per block (benchmarks/gateway.py). The cache is off, so every GET reads the store."""
    site = single_cluster(tmp_path)
    (tmp_path / "data").mkdir()
    config = GatewayConfig(driver="path", root=tmp_path / "data", listen="127.0.0.1:1", uuid=GW, cache_mib=0,
                           store_reads=limit)
    gateway = Gateway(site.local.config, config, site.local.db.session, site.local.restricted_blocks,
                      registrant=site.local.gateway_registrant)
    reading, most, lock, opened = [0], [0], threading.Lock(), gateway.store.open
    together = threading.Barrier(limit, timeout=30)  # the limit is reached whatever the machine's load

    def slow_open(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            reading[0] += 1
            most[0] = max(most[0], reading[0])
        together.wait()  # `limit` reads in here at once (broken, failing the GET, if never allowed)
        time.sleep(0.3)  # and held a while: a read beyond the limit would be counted meanwhile
        with lock:
            reading[0] -= 1
        return opened(*args, **kwargs)

    with ServerThread(gateway.app()) as server:
        locators = []
        for n in range(4):
            (tmp_path / "data" / f"f{n}.txt").write_text(f"file {n}\n")
            locators.append(register(server.url, site.admin.token, f"f{n}.txt")["manifest_text"].split()[1])
        gateway.store.open = slow_open  # type: ignore[method-assign]  # the reads only, not the registrations
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda loc: get(server.url, loc, site.admin.token).status, locators))
    assert answers == [200] * 4
    assert most[0] == limit
