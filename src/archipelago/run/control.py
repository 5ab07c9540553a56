"""Which process runs a cluster directory, and what stands in the way of starting one: `archi cluster
up` holds a lock on DIR/cluster.pid (with its pid inside) for as long as it lives, so a second `up`
of the same directory, `cluster status` and `cluster stop` know it; the ports a cluster must bind are
checked before anything starts, naming whoever holds one. Also `cluster up --detach`."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..config import ClusterConfig
from ..errors import ArchipelagoError
from ..rpc import Urllib3Transport
from .ports import port_holder, port_taken, wait_for_http

PID_NAME = "cluster.pid"
LOG_NAME = "cluster.log"


class ClusterBusy(ArchipelagoError):
    """The cluster cannot start: it runs already, or a port it needs is taken."""

    status = 409


@dataclass(frozen=True)
class Port:
    what: str  # "the API", "the keepstore", "gateway <uuid>"
    key: str  # where the configuration sets it
    host: str
    port: int


def cluster_ports(config: ClusterConfig) -> list[Port]:
    """Every port `cluster up` binds: the API, the keepstore, the gateways it runs itself."""
    ports = [Port("the API", "api.listen", config.api.host, config.api.port),
             Port("the keepstore", "keepstore.listen", config.keepstore.host, config.keepstore.port)]
    ports += [Port(f"gateway {g.uuid}", f"gateways[{n}].listen", g.host, g.port)
              for n, g in enumerate(config.gateways) if not g.standalone]
    return ports


def check_ports(ports: list[Port], config_path: Path) -> None:
    """ClusterBusy naming the first port that is taken, and who holds it."""
    for port in ports:
        if port_taken(port.host, port.port):
            holder = port_holder(port.port)
            who = f"pid {holder[0]} ({_short(holder[1])})" if holder else "another process (not visible to this user)"
            raise ClusterBusy(f"port {port.port} ({port.what}, {port.host}:{port.port}) is taken by {who}; stop it, "
                              f"or give {port.what} another port in {config_path} ({port.key})")


def _short(command: str, limit: int = 120) -> str:
    command = " ".join(command.split())
    return command if len(command) <= limit else command[: limit - 1] + "…"


def hold(directory: Path, cluster_id: str) -> int:
    """Take the directory's lock for this process (the descriptor stays open until it exits) and
    write its pid; ClusterBusy naming the running one if another process holds it."""
    fd = os.open(Path(directory) / PID_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise ClusterBusy(f"cluster {cluster_id} in {directory} is already up (pid {pid}); "
                          f"`archi cluster stop {directory}` stops it") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def running_pid(directory: Path) -> int | None:
    """The pid of the process that runs this cluster directory now, or None."""
    try:
        fd = os.open(Path(directory) / PID_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        return None  # the file of a cluster that stopped (or was killed): nobody holds it
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


def stop(directory: Path, timeout: float = 30.0) -> int | None:
    """SIGTERM to the process running the directory, then wait (at most `timeout` s) until it is
    gone; its pid, None if none ran. ClusterBusy if it is still there after the wait."""
    pid = running_pid(directory)
    if pid is None:
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while running_pid(directory) is not None or alive(pid):  # the lock goes a moment before the process
        if time.monotonic() > deadline:
            raise ClusterBusy(f"pid {pid} did not stop within {timeout:.0f} s of SIGTERM; `kill -9 {pid}` ends it")
        time.sleep(0.05)
    return pid


def alive(pid: int) -> bool:
    """Whether `pid` still runs (an exited process nobody has reaped yet does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def start_detached(directory: Path, config: ClusterConfig, timeout: float = 120.0,
                   on_wait: Callable[[], None] | None = None) -> int:
    """`archi cluster up DIR` as a process of its own (its own session: it outlives this terminal),
    logging to DIR/cluster.log; returns its pid once the API and the keepstore answer."""
    directory = Path(directory).resolve()
    if (pid := running_pid(directory)) is not None:
        raise ClusterBusy(f"cluster {config.cluster_id} in {directory} is already up (pid {pid}); "
                          f"`archi cluster stop {directory}` stops it")
    check_ports(cluster_ports(config), directory / "cluster.yml")
    log_path = directory / LOG_NAME
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "archipelago", "cluster", "up", str(directory)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if on_wait is not None:
        on_wait()
    try:
        wait_for_http(config.api.url + "/_health/ping", timeout, process)
        wait_for_http(f"http://{config.keepstore.listen}", timeout, process)
    except (RuntimeError, TimeoutError) as exc:
        if process.poll() is None:
            process.terminate()
        tail = log_path.read_text(errors="replace").strip().splitlines()[-3:]
        raise ArchipelagoError(f"cluster {config.cluster_id} did not start ({exc}); the end of {log_path}: "
                               + " / ".join(tail)) from None
    return process.pid


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a service answers at `url` at all (any HTTP status; our own self-signed certificates)."""
    try:
        Urllib3Transport(insecure=True, timeout=timeout).request("GET", url, None, {})
    except ConnectionError:
        return False
    return True
