"""keepstore over real HTTP on loopback: the §4.1 endpoints, status codes and headers."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time

import pytest

from archipelago.formats.signing import sign_locator
from tests.support.clusters import ROOT_TOKEN
from tests.support.keep_http import errors, get, http, index, put

pytestmark = pytest.mark.integration


def test_put_get_head(start_keepstore):
    ks = start_keepstore()
    data = b"foo"
    resp = put(ks.url, data)
    assert resp.status == 200
    locator = resp.data.decode().strip()
    assert locator.startswith("acbd18db4cc2f85cedef654fccc4a4d8+3+A")
    assert resp.headers["X-Keep-Replicas-Stored"] == "1"
    assert resp.headers["X-Keep-Storage-Classes-Confirmed"] == "default=1"
    got = get(ks.url, locator)
    assert got.status == 200 and got.data == data
    head = get(ks.url, locator, method="HEAD")
    assert head.status == 200 and head.headers["Content-Length"] == "3"
    assert get(ks.url, "acbd18db4cc2f85cedef654fccc4a4d9+3+A" + locator.split("+A")[1]).status in (400, 404)


def test_big_block_streams_and_verifies(start_keepstore):
    ks = start_keepstore()
    data = os.urandom((8 << 20) + 123)
    locator = put(ks.url, data).data.decode().strip()
    assert get(ks.url, locator).data == data


def test_signature_enforcement(start_keepstore):
    ks = start_keepstore()
    locator = put(ks.url, b"foo").data.decode().strip()
    resp = get(ks.url, locator, token=None)
    assert resp.status == 401
    resp = get(ks.url, locator, token="v2/zzzzz-gj3su-000000000000002/someoneelse")
    assert resp.status == 400 and "invalid signature" in errors(resp)
    assert get(ks.url, "acbd18db4cc2f85cedef654fccc4a4d8+3").status == 400
    expired = sign_locator("acbd18db4cc2f85cedef654fccc4a4d8+3", ROOT_TOKEN, int(time.time()) - 60,
                           ks.config.collections.blob_signing_ttl, ks.config.collections.blob_signing_key.encode())
    resp = get(ks.url, expired)
    assert resp.status == 401 and "expired" in errors(resp)


def test_signing_can_be_turned_off(start_keepstore):
    ks = start_keepstore(collections={"blob_signing": False})
    put(ks.url, b"foo")
    assert get(ks.url, "acbd18db4cc2f85cedef654fccc4a4d8+3", token=None).data == b"foo"


def test_bad_puts_store_nothing(start_keepstore):
    ks = start_keepstore()
    resp = put(ks.url, b"not foo", md5="acbd18db4cc2f85cedef654fccc4a4d8")
    assert resp.status == 400 and "did not match" in errors(resp)
    big = put(ks.url, b"\0" * ((64 << 20) + 1), md5="0" * 32)
    assert big.status == 413
    resp = put(ks.url, b"x", md5="nothex")
    assert resp.status in (400, 404, 405)
    assert index(ks.url) == []
    leftovers = [p for p in ks.config.volumes[0].root.rglob("*") if p.is_file()]
    assert leftovers == []


def test_missing_block_is_404(start_keepstore):
    ks = start_keepstore(collections={"blob_signing": False})
    resp = get(ks.url, "37b51d194a7513e45b56f6524f2d51f2+3")
    assert resp.status == 404 and resp.json()["errors"]


def test_admin_endpoints_need_the_root_token(start_keepstore):
    ks = start_keepstore()
    put(ks.url, b"foo")
    put(ks.url, b"bar")
    assert http.request("GET", f"{ks.url}/index").status == 401
    assert http.request("GET", f"{ks.url}/index", headers={"Authorization": "Bearer nope"}).status == 403
    assert sorted(index(ks.url)) == ["37b51d194a7513e45b56f6524f2d51f2+3", "acbd18db4cc2f85cedef654fccc4a4d8+3"]
    assert index(ks.url, "acb") == ["acbd18db4cc2f85cedef654fccc4a4d8+3"]
    mounts = http.request("GET", f"{ks.url}/mounts", headers={"Authorization": f"Bearer {ROOT_TOKEN}"}).json()
    assert mounts[0]["uuid"] == "zzzzz-nyw5e-000000000000000"
    assert mounts[0]["storage_classes"] == {"default": True} and mounts[0]["allow_write"] is True
    blocks = http.request("GET", f"{ks.url}/mounts/{mounts[0]['uuid']}/blocks",
                          headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert len(blocks.data.decode().splitlines()) == 3  # two blocks and the terminating empty line


def _trash(url: str, locator: str, mtime: int):
    return http.request("PUT", f"{url}/trash", headers={"Authorization": f"Bearer {ROOT_TOKEN}"},
                        body=json.dumps([{"locator": locator, "block_mtime": mtime}]))


def test_trash_untrash_and_empty(start_keepstore):
    ks = start_keepstore(collections={"blob_signing_ttl": 1, "blob_trash_lifetime": 3600,
                                      "blob_signing": False})
    put(ks.url, b"foo")
    resp = http.request("GET", f"{ks.url}/index", headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    locator, mtime = resp.data.decode().split("\n")[0].split(" ")
    assert _trash(ks.url, locator, int(mtime) + 1).json() == {"trashed": 0, "refused": 1}  # stale mtime
    time.sleep(1.2)  # older than the signing TTL now
    assert _trash(ks.url, locator, int(mtime)).json() == {"trashed": 1, "refused": 0}
    assert get(ks.url, locator).status == 404
    resp = http.request("PUT", f"{ks.url}/untrash/{locator}", headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert resp.status == 200
    assert get(ks.url, locator).data == b"foo"


def test_young_blocks_are_never_trashed(start_keepstore):
    ks = start_keepstore()  # default TTL: two weeks
    put(ks.url, b"foo")
    line = http.request("GET", f"{ks.url}/index", headers={"Authorization": f"Bearer {ROOT_TOKEN}"}).data.decode()
    locator, mtime = line.split("\n")[0].split(" ")
    assert _trash(ks.url, locator, int(mtime)).json()["trashed"] == 0
    assert index(ks.url) == [locator]


def test_expired_trash_is_deleted(start_keepstore):
    ks = start_keepstore(collections={"blob_signing_ttl": 1, "blob_trash_lifetime": 0,
                                      "blob_trash_check_interval": 0.2})
    put(ks.url, b"foo")
    line = http.request("GET", f"{ks.url}/index", headers={"Authorization": f"Bearer {ROOT_TOKEN}"}).data.decode()
    locator, mtime = line.split("\n")[0].split(" ")
    time.sleep(1.2)
    _trash(ks.url, locator, int(mtime))
    deadline = time.monotonic() + 10
    while any(ks.config.volumes[0].root.rglob("*.trash.*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(ks.config.volumes[0].root.rglob("acbd18db4cc2f85cedef654fccc4a4d8*"))
    resp = http.request("PUT", f"{ks.url}/untrash/{locator}", headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert resp.status == 404


def test_pull_copies_a_block_from_another_keepstore(start_keepstore):
    source, target = start_keepstore(), start_keepstore()
    put(source.url, b"foo")
    body = json.dumps([{"locator": "acbd18db4cc2f85cedef654fccc4a4d8+3", "servers": [source.url]}])
    resp = http.request("PUT", f"{target.url}/pull", body=body, headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert resp.status == 200
    deadline = time.monotonic() + 10
    while not index(target.url) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert index(target.url) == ["acbd18db4cc2f85cedef654fccc4a4d8+3"]


def test_storage_classes_choose_the_volume(start_keepstore, tmp_path):
    ks = start_keepstore(
        volumes=[{"driver": "directory", "root": str(tmp_path / "hot")},
                 {"driver": "directory", "root": str(tmp_path / "cold"), "storage_classes": ["archive"]}],
        storage_classes={"default": {"default": True}, "archive": {"priority": 1}},
    )
    resp = put(ks.url, b"foo", **{"X-Keep-Storage-Classes": "archive"})
    assert resp.headers["X-Keep-Storage-Classes-Confirmed"] == "archive=1"
    assert list((tmp_path / "cold").rglob("acbd18db4cc2f85cedef654fccc4a4d8"))
    assert not list((tmp_path / "hot").rglob("acbd18db4cc2f85cedef654fccc4a4d8"))
    both = put(ks.url, b"bar", **{"X-Keep-Storage-Classes": "default, archive"})
    assert both.headers["X-Keep-Replicas-Stored"] == "2"
    assert put(ks.url, b"baz", **{"X-Keep-Storage-Classes": "nonesuch"}).status == 503


def test_read_only_volume_refuses_writes(start_keepstore, tmp_path):
    ks = start_keepstore(volumes=[{"driver": "directory", "root": str(tmp_path / "ro"), "read_only": True}])
    resp = put(ks.url, b"foo")
    assert resp.status == 507 and "writable" in errors(resp)


def test_s3_volume(start_keepstore, s3_bucket):
    ks = start_keepstore(volumes=[s3_bucket], collections={"blob_signing_ttl": 1, "blob_signing": False})
    data = os.urandom(3 << 20)
    locator = put(ks.url, data).data.decode().strip()
    assert get(ks.url, locator).data == data
    md5 = hashlib.md5(data).hexdigest()
    assert index(ks.url) == [f"{md5}+{len(data)}"]
    line = http.request("GET", f"{ks.url}/index", headers={"Authorization": f"Bearer {ROOT_TOKEN}"}).data.decode()
    mtime = int(line.split("\n")[0].split(" ")[1])
    time.sleep(1.2)
    assert _trash(ks.url, f"{md5}+{len(data)}", mtime).json()["trashed"] == 1
    assert get(ks.url, locator).status == 404
    http.request("PUT", f"{ks.url}/untrash/{md5}+{len(data)}", headers={"Authorization": f"Bearer {ROOT_TOKEN}"})
    assert get(ks.url, locator).data == data


def _stalled_put(url: str, md5: str, token: str | None = ROOT_TOKEN) -> socket.socket:
    """A PUT that sends its headers and then nothing (a slow or hostile client)."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    conn.sendall(f"PUT /{md5} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n{auth}\r\n".encode())
    return conn


def test_a_put_without_a_token_is_refused_before_its_body(start_keepstore):
    ks = start_keepstore()
    conn = _stalled_put(ks.url, "acbd18db4cc2f85cedef654fccc4a4d8", token=None)
    conn.settimeout(10)
    assert b" 401 " in conn.recv(4096).split(b"\r\n")[0]
    conn.close()


def test_stalled_puts_hold_nothing_and_a_full_keepstore_says_busy(start_keepstore):
    ks = start_keepstore(keepstore={"max_concurrent_puts": 2, "body_read_timeout": 6})
    stalled = [_stalled_put(ks.url, "acbd18db4cc2f85cedef654fccc4a4d8") for _ in range(2)]
    # a probe that stores nothing (its body is not the block named): 400 while a slot is free,
    # 503 once the two stalled PUTs hold them — however long the keepstore takes to see them
    deadline = time.monotonic() + 30
    while (busy := put(ks.url, b"not foo", md5="acbd18db4cc2f85cedef654fccc4a4d8")).status != 503:
        assert time.monotonic() < deadline, f"the stalled PUTs never held the slots ({busy.status})"
        time.sleep(0.05)
    assert "busy" in errors(busy)
    assert [p for p in ks.config.volumes[0].root.rglob("*") if p.is_file()] == []  # no temp files held
    for conn in stalled:  # dropped after body_read_timeout
        conn.settimeout(60)
        assert b" 499 " in conn.recv(4096).split(b"\r\n")[0] or conn.recv(4096) == b""
        conn.close()
    assert put(ks.url, b"foo").status == 200  # the slots are free again
