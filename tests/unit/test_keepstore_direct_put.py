"""Large PUT bodies read straight off the socket (keepstore/receive.py): stored exactly as sent, refused
when they do not hash to their name, nothing left behind by a client that leaves or stalls halfway,
and the connection closed after each answer (aiohttp's parser never saw the body)."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import pytest

from archipelago.keepstore.app import Keepstore, ServerThread
from archipelago.keepstore.receive import DIRECT_MIN
from archipelago.keepstore.store import BlockStore
from tests.support.clusters import cluster_config
from tests.support.keep_http import errors, get, put, stub_validator

TOKEN = "v2/zzzzz-gj3su-00000000000user/usersecret0123456789abcdefghijklmnopqrstuv"


@pytest.fixture
def keepstore(tmp_path: Path, request: pytest.FixtureRequest):
    """A keepstore whose body timeout is generous (a 64 MiB PUT on a loaded machine), or the test's
    own (parametrize "keepstore" indirectly with the seconds)."""
    config = cluster_config([{"driver": "directory", "root": str(tmp_path / "vol")}],
                            keepstore={"body_read_timeout": getattr(request, "param", 60)})
    keepstore = Keepstore(config, BlockStore.from_config(config), authenticate=stub_validator(TOKEN))
    with ServerThread(keepstore.app()) as server:
        yield keepstore, server.url, tmp_path / "vol"


def files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def raw_put(url: str, md5: str, length: int, body: bytes, close: bool = True) -> socket.socket:
    """Headers and the first bytes in one send, as a client's first segment carries them."""
    host, port = url.removeprefix("http://").split(":")
    conn = socket.create_connection((host, int(port)))
    head = (f"PUT /{md5} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {length}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
    conn.sendall(head + body)
    return conn


def answer(conn: socket.socket) -> bytes:
    """All the server sent until it closed the connection (a bound, not a measure: the test fails if
    the server neither answers nor closes within a minute)."""
    conn.settimeout(60)
    received = b""
    while chunk := conn.recv(65536):
        received += chunk
    return received


@pytest.mark.parametrize("size", [DIRECT_MIN, 5 * DIRECT_MIN + 7, 64 << 20])
def test_a_large_body_is_stored_exactly_and_its_connection_closed(keepstore, size: int):
    _, url, _ = keepstore
    data = os.urandom(size)
    resp = put(url, data, token=TOKEN)
    assert resp.status == 200, resp.data
    assert resp.headers.get("Connection", "").lower() == "close"
    assert get(url, resp.data.decode().strip(), token=TOKEN).data == data
    again = put(url, os.urandom(size), token=TOKEN)  # the client opens a new connection and goes on
    assert again.status == 200


def test_a_large_body_that_does_not_hash_to_its_name_is_refused_and_nothing_is_left(keepstore):
    store, url, volume = keepstore
    data = os.urandom(3 << 20)
    md5 = hashlib.md5(b"something else").hexdigest()
    resp = put(url, data, md5=md5, token=TOKEN)
    assert resp.status == 400 and "did not match" in errors(resp)
    assert resp.headers.get("Connection", "").lower() == "close"
    assert not store.service.store.stored(md5) and files_under(volume) == []


def test_a_body_sent_whole_in_the_first_segment_with_its_headers_is_read_from_aiohttp(keepstore):
    store, url, _ = keepstore
    data = os.urandom(DIRECT_MIN + 10)
    md5 = hashlib.md5(data).hexdigest()
    reply = answer(raw_put(url, md5, len(data), data))
    assert reply.startswith(b"HTTP/1.1 200") and store.service.store.stored(md5)


def test_a_client_that_leaves_halfway_leaves_nothing_and_frees_its_slot(keepstore):
    store, url, volume = keepstore
    data = os.urandom(4 << 20)
    conn = raw_put(url, hashlib.md5(data).hexdigest(), len(data), data[: 3 << 20])
    time.sleep(0.3)
    conn.close()
    deadline = time.monotonic() + 10
    while store.service.puts_in_progress or files_under(volume):
        assert time.monotonic() < deadline, "the half-sent block held its slot or left a file"
        time.sleep(0.05)
    assert put(url, data, token=TOKEN).status == 200


@pytest.mark.parametrize("keepstore", [1], indirect=True)  # the body timeout: 1 s
def test_a_client_that_stalls_halfway_is_dropped_after_the_body_timeout(keepstore):
    store, url, volume = keepstore
    data = os.urandom(4 << 20)
    conn = raw_put(url, hashlib.md5(data).hexdigest(), len(data), data[: 2 << 20])
    reply = answer(conn)  # the server answers and closes the connection (answer reads to its end)
    assert reply.startswith(b"HTTP/1.1 499") and b"sent nothing" in reply
    assert store.service.puts_in_progress == 0 and files_under(volume) == []


def test_a_get_reads_the_block_off_the_disk_with_o_direct(keepstore, monkeypatch):
    """Blocks are written with O_DIRECT, so a fresh one is on the disk only; reading it through the page
    cache filled fresh pages and made a cold 1 GiB read two to three times slower (README, Federated read)."""
    import fcntl

    _, url, _ = keepstore
    data = os.urandom(5 << 20 | 123)
    locator = put(url, data, token=TOKEN).data.decode().strip()
    direct: list[bool] = []
    real = os.preadv
    monkeypatch.setattr(os, "preadv", lambda fd, buffers, offset, *flags: (
        direct.append(bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)), real(fd, buffers, offset, *flags))[1])
    assert get(url, locator, token=TOKEN).data == data
    assert direct and all(direct)


def test_stalled_large_uploads_do_not_hold_up_other_requests(tmp_path: Path):
    """Each large body waits in a thread of its own pool: eight stalled ones (more than the event loop's
    default executor has threads) must not delay a GET, which needs that executor."""
    config = cluster_config([{"driver": "directory", "root": str(tmp_path / "vol")}],
                            keepstore={"body_read_timeout": 120})  # stalled for the whole test
    keepstore = Keepstore(config, BlockStore.from_config(config), authenticate=stub_validator(TOKEN))
    with ServerThread(keepstore.app()) as server:
        data = os.urandom(DIRECT_MIN)
        locator = put(server.url, data, token=TOKEN).data.decode().strip()
        stalled = [raw_put(server.url, hashlib.md5(b"%d" % n).hexdigest(), 4 << 20, b"x" * 1000) for n in range(8)]
        deadline = time.monotonic() + 30
        while keepstore.service.puts_in_progress < 8:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # every stalled body is now waiting in its thread
        assert get(server.url, locator, token=TOKEN).data == data
        assert keepstore.service.puts_in_progress == 8  # answered while they stall, not once they timed out
        for conn in stalled:
            conn.close()
