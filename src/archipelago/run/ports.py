"""Loopback ports for services, and waiting until a service answers."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time

import urllib3

# below Linux's ephemeral range (32768-60999): a port handed out here is written into configs and
# bound later, and in between an outgoing connection could take an ephemeral one
SERVICE_PORTS = range(20000, 32768)
_handed_out: set[int] = set()  # not bound yet by whoever asked: never hand them out twice


def free_port() -> int:
    """A loopback port nobody listens on now, outside the range outgoing connections draw from."""
    for _ in range(200):
        port = secrets.choice(SERVICE_PORTS)  # not `random`: tests may seed it
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port found")


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    http = urllib3.PoolManager(cert_reqs="CERT_NONE")  # our own self-signed loopback certificates
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server process exited with code {process.returncode}")
        try:
            http.request("OPTIONS", url, timeout=1, retries=False)
            return
        except urllib3.exceptions.HTTPError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
