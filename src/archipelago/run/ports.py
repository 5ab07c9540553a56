"""Loopback ports for services, waiting until a service answers, and who holds a port."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

from ..rpc import Urllib3Transport

# below Linux's ephemeral range (32768-60999): a port handed out here is written into configs and
# bound later, and in between an outgoing connection could take an ephemeral one
SERVICE_PORTS = range(20000, 32768)
_handed_out: set[int] = set()  # not bound yet by whoever asked: never hand them out twice


def service_ports() -> range:
    """SERVICE_PORTS, or the slice `ARCHI_SERVICE_PORTS=first-last` names: processes that hand out
    ports side by side (parallel test workers) each take their own, since `_handed_out` is one
    process's and a port written into a config may stay unbound for seconds (a cluster restarting)."""
    first, _, last = os.environ.get("ARCHI_SERVICE_PORTS", "").partition("-")
    if first.isdigit() and last.isdigit() and int(first) <= int(last):
        return range(int(first), int(last) + 1)
    return SERVICE_PORTS


def free_port() -> int:
    """A loopback port nobody listens on now, outside the range outgoing connections draw from."""
    ports = service_ports()
    for _ in range(200):
        port = secrets.choice(ports)  # not `random`: tests may seed it
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
    http = Urllib3Transport(insecure=True, timeout=1.0)  # our own self-signed loopback certificates
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server process exited with code {process.returncode}")
        try:
            http.request("OPTIONS", url, None, {})  # any answer will do
            return
        except ConnectionError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def port_taken(host: str, port: int) -> bool:
    """Whether something listens on host:port now (a port in TIME_WAIT after a stop is not taken)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def port_holder(port: int) -> tuple[int, str] | None:
    """The process listening on TCP `port` (any address) and its command line, as Linux's /proc tells
    this user; None if it cannot be seen (another user's process, or no /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rpartition(":")[2], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")  # 0A: LISTEN
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (proc / "fd").iterdir()):
                argv = (proc / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
                return int(proc.name), " ".join(a.decode(errors="replace") for a in argv)
        except OSError:
            continue
    return None
