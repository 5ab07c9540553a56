"""How the API process serves: each connection it accepts sends at once (no Nagle delay behind
the client's delayed ACK), and the heap built at start-up is out of the collector's reach."""

from __future__ import annotations

import socket
import subprocess
import sys

from archipelago.run.cluster import api_socket
from tests.support.clusters import cluster_config


def test_every_connection_the_api_accepts_has_nagle_off():
    config = cluster_config([], api={"listen": "127.0.0.1:0"})
    listener = api_socket(config)
    try:
        with socket.create_connection(listener.getsockname()):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listener.close()


def test_settle_heap_freezes_what_start_up_built_and_makes_collections_rarer():
    """In a child process: the test runner's own collector is left as it is."""
    code = ("import gc; from archipelago.run.cluster import settle_heap; before = gc.get_threshold(); settle_heap(); "
            "print(gc.get_freeze_count() > 10_000, gc.get_threshold()[0] > before[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True"]
