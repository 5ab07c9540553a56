"""A hostile (or broken) site answers the resolver's poll of its feed with 100 MiB, on a real
resolver process: the resolver reads no more than its bound (it read the whole answer into memory,
however large), marks the site down saying why, and goes on answering."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from archipelago.resolver.poller import MAX_ANSWER
from archipelago.run.resolver import ResolverProcess
from tests.support.resolver import resolver_process

SENT = 100 << 20
http = urllib3.PoolManager(retries=False)


class Flood(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(SENT))
        self.end_headers()
        piece = b" " * (1 << 20)
        try:
            for _ in range(SENT // len(piece)):
                self.wfile.write(piece)
        except OSError:  # the resolver stopped reading
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def resolver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResolverProcess]:
    site = ThreadingHTTPServer(("127.0.0.1", 0), Flood)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    sites = {"z3333": {"url": f"http://127.0.0.1:{site.server_address[1]}", "key": "c" * 32, "mode": "poll",
                       "poll_interval": 1}}
    with resolver_process(tmp_path_factory.mktemp("resolver"), sites, poll_timeout=20) as process:
        yield process
    site.shutdown()


def test_a_sites_huge_poll_answer_is_read_only_up_to_the_bound(resolver: ResolverProcess) -> None:
    deadline = time.monotonic() + 30
    while True:
        site = json.loads(http.request("GET", resolver.url + "/resolver/v1/sites").data)["sites"][0]
        if site["poll_error"]:
            break
        assert time.monotonic() < deadline, "the resolver never finished a poll of the site"
        time.sleep(0.3)
    assert f"more than {MAX_ANSWER} bytes" in site["poll_error"], site["poll_error"]
    assert site["liveness"] != "live"
    assert http.request("GET", resolver.url + "/_health/ping").status == 200
