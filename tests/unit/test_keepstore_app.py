"""keepstore's handlers in process (aiohttp on a loopback port in a thread): the decisions each
route makes, without starting processes. The protocol over real processes is in
tests/integration/test_keepstore.py."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from archipelago.formats.signing import sign_locator
from archipelago.keepstore.app import Keepstore, ServerThread
from archipelago.keepstore.store import BlockStore
from tests.support.clusters import ROOT_TOKEN, USER_TOKEN, cluster_config
from tests.support.keep_http import errors, get, http, put, stub_validator

VISITOR_TOKEN = "v2/z2222-gj3su-0000000000visit/visitorsecret0123456789abcdefghijklmnopq"


@pytest.fixture
def keepstore(tmp_path: Path):
    config = cluster_config([{"driver": "directory", "root": str(tmp_path / "vol")}])
    keepstore = Keepstore(config, BlockStore.from_config(config), authenticate=stub_validator(USER_TOKEN))
    with ServerThread(keepstore.app()) as server:
        yield keepstore, server.url


def signed(locator: str, token: str) -> str:
    import time

    return sign_locator(locator, token, int(time.time()) + 3600, 1209600, b"k" * 40)


def test_a_stored_block_is_served_to_its_signature_only(keepstore):
    _, url = keepstore
    resp = put(url, b"hello")
    assert resp.status == 200
    locator = resp.data.decode().strip()
    assert get(url, locator).data == b"hello"
    assert get(url, locator, method="HEAD").headers["Content-Length"] == "5"
    assert get(url, locator, token=None).status == 401
    assert get(url, locator, token=USER_TOKEN + "x").status == 400
    assert get(url, locator.split("+A")[0]).status == 400  # unsigned


def test_a_block_is_stored_only_for_a_token_the_cluster_accepts(keepstore):
    store, url = keepstore
    md5 = hashlib.md5(b"free storage?").hexdigest()
    assert put(url, b"free storage?", token="v2/zzzzz-gj3su-000000000000009/madeup").status == 401
    assert put(url, b"free storage?", token=None).status == 401
    assert not store.service.store.stored(md5)
    resp = put(url, b"free storage?", token=USER_TOKEN)
    assert resp.status == 200
    assert get(url, resp.data.decode().strip(), token=USER_TOKEN).data == b"free storage?"


def test_a_body_that_does_not_hash_to_its_name_is_refused_and_not_stored(keepstore):
    store, url = keepstore
    md5 = hashlib.md5(b"honest").hexdigest()
    resp = put(url, b"lying", md5=md5)
    assert resp.status == 400 and "did not match" in errors(resp)
    assert not store.service.store.stored(md5)


def test_residency_refuses_a_restricted_block_to_other_clusters_only(keepstore):
    store, url = keepstore
    locator = put(url, b"stays here", token=USER_TOKEN).data.decode().strip()
    md5 = locator[:32]
    store.service.restricted = {md5}
    assert get(url, signed(f"{md5}+10", VISITOR_TOKEN), token=VISITOR_TOKEN).status == 403
    resp = http.request("GET", f"{url}/{locator}", headers={"Authorization": f"Bearer {USER_TOKEN}",
                                                             "X-Archipelago-Cluster": "z9999"})
    assert resp.status == 403 and "residency" in errors(resp)
    assert get(url, locator, token=USER_TOKEN).data == b"stays here"  # a reader of this cluster


def test_admin_endpoints_need_the_root_token(keepstore):
    _, url = keepstore
    put(url, b"indexed")
    assert http.request("GET", f"{url}/index").status == 401
    assert http.request("GET", f"{url}/index", headers={"Authorization": f"Bearer {USER_TOKEN}"}).status == 403
    text = http.request("GET", f"{url}/index", headers={"Authorization": f"Bearer {ROOT_TOKEN}"}).data.decode()
    assert text.startswith(hashlib.md5(b"indexed").hexdigest() + "+7 ") and text.endswith("\n\n")


def test_a_corrupt_block_is_cut_off_quarantined_and_then_missing(keepstore, tmp_path):
    _, url = keepstore
    data = b"x" * 5000
    locator = put(url, data).data.decode().strip()
    [path] = [p for p in (tmp_path / "vol").rglob(locator[:32]) if p.is_file()]
    path.write_bytes(b"y" + data[1:])
    assert get(url, locator).status == 502
    assert get(url, locator).status == 404


def test_one_users_stalled_uploads_cannot_take_every_put_slot(tmp_path: Path):
    """32 stalled uploads of one user used to hold every slot, so everyone else got 503: a user holds
    at most `max_concurrent_puts_per_user`, and others still store (two tokens of one user count once)."""
    import socket
    import time
    from types import SimpleNamespace

    alice_tokens = {"v2/z1111-gj3su-0000000000alic1/a1secret", "v2/z1111-gj3su-0000000000alic2/a2secret"}
    bob = "v2/z1111-gj3su-00000000000bob1/bobsecret"

    def authenticate(token: str) -> SimpleNamespace:  # stands in for the cluster's identity: who holds a token
        if token in alice_tokens:
            return SimpleNamespace(user_uuid="z1111-tpzed-000000000alice00")
        if token == bob:
            return SimpleNamespace(user_uuid="z1111-tpzed-00000000000bob00")
        raise AssertionError(f"unexpected token {token}")

    config = cluster_config([{"driver": "directory", "root": str(tmp_path / "vol")}],
                            keepstore={"max_concurrent_puts": 4, "max_concurrent_puts_per_user": 2,
                                       "body_read_timeout": 5})
    with ServerThread(Keepstore(config, BlockStore.from_config(config), authenticate=authenticate).app()) as server:
        host, port = server.url.removeprefix("http://").split(":")
        stalled = []
        for token in sorted(alice_tokens):  # one stalled upload with each of alice's two tokens
            conn = socket.create_connection((host, int(port)))
            conn.sendall(f"PUT /acbd18db4cc2f85cedef654fccc4a4d8 HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\n"
                         f"Authorization: Bearer {token}\r\n\r\nf".encode())
            stalled.append(conn)
        deadline = time.monotonic() + 10
        while (third := put(server.url, b"foo", token=sorted(alice_tokens)[0])).status == 200:
            assert time.monotonic() < deadline, "alice's stalled uploads never took their slots"
        assert third.status == 503 and "writing 2 blocks" in errors(third)
        assert put(server.url, b"bar", token=bob).status == 200  # bob is not starved
        for conn in stalled:
            conn.close()
