"""What a gateway asks a store so that it never reads another version than the one it mapped."""

from __future__ import annotations

from pathlib import Path

import pytest

from archipelago.gateway.stores import ObjectChanged, PathStore, _unchanged_since


def test_a_web_server_is_asked_for_the_version_registered() -> None:
    assert _unchanged_since('"5f0-1a2b"') == {"If-Match": '"5f0-1a2b"'}  # a strong ETag must match
    assert _unchanged_since("Mon, 23 Nov 2026 17:00:00 GMT") == {
        "If-Unmodified-Since": "Mon, 23 Nov 2026 17:00:00 GMT"}  # no ETag: not modified since
    assert _unchanged_since('W/"5f0"') == {} and _unchanged_since("") == {}  # proves nothing: md5 decides


def test_a_file_is_read_only_at_the_version_registered(tmp_path: Path) -> None:
    store = PathStore(tmp_path)
    (tmp_path / "a.txt").write_bytes(b"0123456789")
    version = next(store.objects("a.txt")).version
    with store.open("a.txt", version, 4, 3) as source:
        assert source.read(3) == b"456"
    (tmp_path / "a.txt").write_bytes(b"changed!!!")
    with pytest.raises(ObjectChanged):
        store.open("a.txt", version)


def test_a_web_object_of_unknown_size_is_not_registered_as_empty() -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from archipelago.errors import BadGateway
    from archipelago.gateway.stores import HttpStore

    class NoLength(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # a dynamic page: streamed, its size unknown in advance
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), NoLength)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(BadGateway, match="does not say how large it is"):
            list(HttpStore(f"http://127.0.0.1:{server.server_address[1]}").objects("report.txt"))
    finally:
        server.shutdown()
