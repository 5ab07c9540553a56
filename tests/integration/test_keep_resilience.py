"""Several keepstores: replication, failover, corruption routed around, crashes, full disks."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess

import pytest
import urllib3

from archipelago.keep.client import KeepClient
from archipelago.keep.errors import BlockNotFound, KeepReadError, KeepWriteError
from archipelago.keep.rendezvous import rendezvous_order
from archipelago.keep.services import KeepService
from archipelago.run.processes import KeepstoreProcess
from tests.support.clusters import ROOT_TOKEN, cluster_config
from tests.support.keep_http import get, index, put

pytestmark = pytest.mark.integration


def client_for(stores: list[KeepstoreProcess], **kwargs) -> KeepClient:
    services = [KeepService(f"zzzzz-bi6l4-{n:015d}", ks.url) for n, ks in enumerate(stores)]
    kwargs.setdefault("cache", None)
    return KeepClient(services, ROOT_TOKEN, backoff=0.01, **kwargs)


def ordered(client: KeepClient, stores: list[KeepstoreProcess], md5: str) -> list[KeepstoreProcess]:
    by_url = {ks.url: ks for ks in stores}
    return [by_url[s.url] for s in rendezvous_order(md5, client.services, lambda s: s.uuid)]


def test_replicas_land_on_distinct_services_and_survive_a_dead_one(start_keepstore):
    stores = [start_keepstore() for _ in range(3)]
    client = client_for(stores, replicas=2)
    data = os.urandom(100_000)
    md5 = hashlib.md5(data).hexdigest()
    locator = client.put(data)
    holders = [ks for ks in stores if index(ks.url)]
    assert set(holders) == set(ordered(client, stores, md5)[:2])  # the first two in probe order
    ordered(client, stores, md5)[0].kill()
    assert client.get(locator) == data


def test_put_fails_clearly_when_too_few_services(start_keepstore):
    stores = [start_keepstore()]
    client = client_for(stores, replicas=2)
    with pytest.raises(KeepWriteError, match="stored 1 of 2 replicas"):
        client.put(b"needs two copies")


def test_unreachable_services_are_skipped(start_keepstore):
    live = start_keepstore()
    dead = KeepService("zzzzz-bi6l4-000000000000009", "http://127.0.0.1:9")  # nothing listens there
    client = KeepClient([dead, KeepService("zzzzz-bi6l4-000000000000001", live.url)], ROOT_TOKEN,
                        backoff=0.01, retries=1, cache=None)
    locator = client.put(b"hello")
    assert client.get(locator) == b"hello"


@pytest.mark.parametrize("size", [1000, 5 << 20], ids=["small", "bigger-than-a-chunk"])
def test_corrupt_copy_is_detected_quarantined_and_routed_around(start_keepstore, size):
    stores = [start_keepstore(), start_keepstore()]
    client = client_for(stores, replicas=2)
    data = os.urandom(size)
    md5 = hashlib.md5(data).hexdigest()
    locator = client.put(data)
    first = ordered(client, stores, md5)[0]
    [path] = first.config.volumes[0].root.rglob(md5)
    with open(path, "r+b") as handle:  # flip one byte in the middle: bit rot
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    if size < (2 << 20):  # verified before the first byte goes out
        assert get(first.url, locator).status == 502
    else:  # streamed: the connection is cut before the last chunk, so no client sees a complete body
        with pytest.raises(urllib3.exceptions.ProtocolError, match="IncompleteRead"):
            get(first.url, locator)
    assert client.get(locator) == data  # from the healthy replica
    assert get(first.url, locator).status == 404  # the corrupt copy is out of service
    assert list(first.config.volumes[0].root.rglob(f"{md5}.corrupt.*"))
    client.put(data)  # and a fresh PUT heals it
    assert get(first.url, locator).data == data


@pytest.mark.parametrize("size", [1000, 5 << 20], ids=["small", "bigger-than-a-chunk"])
def test_a_block_corrupt_on_its_only_service_is_reported_as_corrupt(start_keepstore, size):
    store = start_keepstore()
    client = client_for([store], replicas=1)
    data = os.urandom(size)
    locator = client.put(data)
    [path] = store.config.volumes[0].root.rglob(hashlib.md5(data).hexdigest())
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        byte = handle.read(1)
        handle.seek(size // 2)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(KeepReadError, match=f"is corrupt on {store.url}.*no other service holds a copy") as caught:
        client_for([store], replicas=1).get(locator)
    assert caught.value.corrupt == [store.url]  # decided on the failures' types (keep/errors.py)


def test_block_missing_everywhere_is_not_found(start_keepstore):
    client = client_for([start_keepstore(collections={"blob_signing": False})])
    with pytest.raises(BlockNotFound):
        client.get("37b51d194a7513e45b56f6524f2d51f2+3")


def test_crash_during_put_leaves_nothing_visible(tmp_path):
    config = cluster_config([{"driver": "directory", "root": str(tmp_path / "vol")}])
    data = os.urandom(8 << 20)
    md5 = hashlib.md5(data).hexdigest()
    ks = KeepstoreProcess(config, tmp_path).start()
    try:
        with socket.create_connection(("127.0.0.1", ks.port)) as sock:
            sock.sendall(f"PUT /{md5} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode())
            sock.sendall(data[: len(data) // 2])
            # wait until the keepstore has started writing the block
            volume = tmp_path / "vol"
            for _ in range(200):
                if list(volume.rglob(f"{md5}.tmp*")):
                    break
                subprocess.run(["sleep", "0.02"], check=True)
            ks.kill()  # SIGKILL mid-body: no cleanup code runs
    finally:
        ks.stop()
    assert not list((tmp_path / "vol").rglob(md5)), "a partial block must never appear under its name"
    restarted = KeepstoreProcess(config, tmp_path).start()
    try:
        assert index(restarted.url) == []
        assert get(restarted.url, f"{md5}+{len(data)}").status in (400, 404)
        resp = put(restarted.url, data)  # and the block can be stored afterwards
        assert resp.status == 200
    finally:
        restarted.stop()


@pytest.fixture
def tiny_disk(tmp_path):
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_full_disk_is_507_and_keepstore_keeps_serving(start_keepstore, tiny_disk):
    ks = start_keepstore(volumes=[{"driver": "directory", "root": str(tiny_disk)}])
    small = put(ks.url, b"foo")
    assert small.status == 200
    resp = put(ks.url, os.urandom(3 << 20))
    assert resp.status == 507
    assert not [p for p in tiny_disk.rglob("*") if ".tmp" in p.name]
    assert get(ks.url, small.data.decode().strip()).data == b"foo"


@pytest.mark.parametrize("size", [1000, 5 << 20], ids=["small", "bigger-than-a-chunk"])
def test_rotten_checksum_on_good_data_is_repaired_not_quarantined(start_keepstore, size):
    from archipelago.keepstore.volumes.directory import CHECKSUM_XATTR

    ks = start_keepstore()
    data = os.urandom(size)
    md5 = hashlib.md5(data).hexdigest()
    locator = put(ks.url, data).data.decode().strip()
    [path] = ks.config.volumes[0].root.rglob(md5)
    good = os.getxattr(path, CHECKSUM_XATTR)
    os.setxattr(path, CHECKSUM_XATTR, b"0" * 32)
    assert get(ks.url, locator).data == data  # md5 settles it: the data is fine
    assert os.getxattr(path, CHECKSUM_XATTR) == good


def test_get_into_reuses_the_callers_buffer(start_keepstore):
    client = client_for([start_keepstore()])
    buffer = bytearray(1 << 20)
    first = client.put(b"a" * 1000)
    second = client.put(b"b" * 500)
    assert bytes(client.get_into(first, buffer)) == b"a" * 1000
    view = client.get_into(second, buffer)
    assert bytes(view) == b"b" * 500 and view.obj is buffer


def test_stream_blocks_reuses_buffers_without_mixing_blocks(start_keepstore):
    client = client_for([start_keepstore()], max_workers=2)
    blocks = [os.urandom((2 << 20) + n) for n in range(7)] + [b"tiny"]
    locators = [client.put(b) for b in blocks]
    got = [bytes(view) for view in client.stream_blocks(locators)]  # copied before the next is fetched
    assert got == blocks
