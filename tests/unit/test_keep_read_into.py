"""keep/http.read_into: a body goes straight into the caller's buffer (not through urllib3's read,
which copies every piece), byte for byte, its end and a cut-off seen as such; an encoded body is
left to urllib3. A real HTTP server on loopback."""

from __future__ import annotations

import gzip
import http.server
import os
import threading
from collections.abc import Iterator

import pytest
import urllib3

from archipelago.keep.http import read_into

BODY = os.urandom(3 << 20)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, headers = BODY, {}
        if self.path == "/gzip":
            body, headers = gzip.compress(BODY), {"Content-Encoding": "gzip"}
        announced = len(body) * 2 if self.path == "/cut" else len(body)
        self.send_response(200)
        self.send_header("Content-Length", str(announced))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def read_all(answer: urllib3.BaseHTTPResponse, size: int) -> bytes:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size and (n := read_into(answer, view[got:got + (1 << 20)])):
        got += n
    return bytes(buffer[:got])


def test_a_plain_body_arrives_whole_without_urllib3_reading_it(server):
    answer = urllib3.PoolManager().request("GET", f"{server}/plain", preload_content=False)
    answer.read = answer.readinto = None  # type: ignore[method-assign]  # urllib3's own reads must not be used
    assert read_all(answer, len(BODY) + 10) == BODY
    assert read_into(answer, memoryview(bytearray(10))) == 0  # the end of the body


def test_a_body_cut_short_ends_at_what_came(server):
    """The server announces twice what it sends, then closes: the reader gets what came, then 0
    (the caller compares with the size it expected: keep/reads.py's CutShort)."""
    answer = urllib3.PoolManager().request("GET", f"{server}/cut", preload_content=False)
    assert read_all(answer, 2 * len(BODY)) == BODY


def test_an_encoded_body_is_decoded_by_urllib3(server):
    answer = urllib3.PoolManager().request("GET", f"{server}/gzip", preload_content=False)
    assert read_all(answer, len(BODY) + 10) == BODY
