"""A push's body, attacked on a real resolver process: a stranger who declares a 32 MiB push should
be refused on its headers before a byte of the body is read; a body cut short or
changed after signing is refused; a site's large push that arrives in pieces is read whole (the
aiohttp handler before took what had arrived and refused the rest as a forgery); a signature's time
must be a real time (NaN passed the clock check)."""

from __future__ import annotations

import socket
import time

import orjson
import pytest

from archipelago.resolver.app import MAX_BODY
from archipelago.resolver.signing import sign
from tests.support.resolver import push_sites, resolver_process

KEYS = {"z1111": "a" * 32, "z2222": "b" * 32}
PATH = "/resolver/v1/push"


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    with resolver_process(tmp_path_factory.mktemp("resolver"), push_sites(KEYS)) as process:
        yield process


def send(url: str, headers: dict[str, str], body: bytes, length: int | None = None, piece: int = 0,
         wait: float = 5.0) -> int:
    """The status of a push sent by hand: headers, then `body` (in pieces of `piece` bytes with a pause
    between them, if given); `length` is the Content-Length declared. 0 if no answer within `wait`."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"POST {PATH} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json",
             f"Content-Length: {len(body) if length is None else length}", "Connection: close",
             *(f"{k}: {v}" for k, v in headers.items())]
    with socket.create_connection((host, int(port)), timeout=wait) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for start in range(0, len(body), piece or len(body) or 1):
            conn.sendall(body[start:start + (piece or len(body))])
            if piece:
                time.sleep(0.002)
        try:
            answer = conn.recv(64)
        except TimeoutError:
            return 0
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_a_strangers_push_is_refused_before_its_body_is_read(resolver):
    forged = sign("c" * 32, "z1111", "POST", PATH, b"x" * 100)  # a known site's name, not its key
    started = time.monotonic()
    assert send(resolver.url, forged, b"", length=MAX_BODY) == 401  # no body sent at all: refused anyway
    assert send(resolver.url, {}, b"", length=MAX_BODY) == 401  # unsigned
    assert time.monotonic() - started < 4


def test_a_body_other_than_the_one_signed_is_refused(resolver):
    raw = orjson.dumps({"after": None})
    signed = sign(KEYS["z1111"], "z1111", "POST", PATH, raw)
    assert send(resolver.url, signed, raw[:-1]) == 401  # cut short
    signed = sign(KEYS["z1111"], "z1111", "POST", PATH, raw)
    assert send(resolver.url, signed, raw.replace(b"null", b"   0")) == 401  # changed, same length


def test_a_large_push_arriving_in_pieces_is_read_whole(resolver):
    first = orjson.dumps({"after": None})
    assert send(resolver.url, sign(KEYS["z2222"], "z2222", "POST", PATH, first), first) == 200
    records = {f"doi:10.5555/many-{n}": [{"uuid": f"z2222-4zz18-{n:015d}", "kind": "collection",
                                         "pdh": "0cc175b9c0f1b6a831c399e269772661+1", "size": 1,
                                         "name": "x" * 200}] for n in range(5000)}
    raw = orjson.dumps({"after": 0, "to": 1, "identifiers": records})
    assert len(raw) > 1 << 20
    assert send(resolver.url, sign(KEYS["z2222"], "z2222", "POST", PATH, raw), raw, piece=64 << 10, wait=30) == 200


def test_a_signature_made_at_no_real_time_is_refused(resolver):
    raw = orjson.dumps({"after": None})
    for at in (float("nan"), float("inf")):
        assert send(resolver.url, sign(KEYS["z1111"], "z1111", "POST", PATH, raw, at=at), raw) == 401
    assert send(resolver.url, sign(KEYS["z1111"], "z1111", "POST", PATH, raw), raw) == 200  # and the site still pushes


def test_a_body_sent_anywhere_but_a_push_is_refused_before_it_is_read(resolver):
    host, port = resolver.url.removeprefix("http://").split(":")
    for line in ("GET /resolver/v1/resolve?id=doi:10.1/x", "POST /resolver/v1/nowhere", "PUT /resolver/v1/push"):
        with socket.create_connection((host, int(port)), timeout=5) as conn:
            conn.sendall(f"{line} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {MAX_BODY}\r\n\r\n".encode())
            assert conn.recv(64).startswith(b"HTTP/1.1 413 "), line  # no body sent: answered on the headers
