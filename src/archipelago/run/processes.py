"""Services as real child processes on loopback (a cluster, a keepstore, PostgreSQL): used by the
demo, `archi federation up`, the tests and the benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..config import ClusterConfig, dump_config
from ..files import write_private
from .cluster import load_cluster
from .ports import free_port, wait_for_http


def stop_executors(api_url: str, grace: float = 5.0) -> None:
    """End every executor on this host that works for the cluster at `api_url` (SIGTERM: it stops its
    container; SIGKILL to its process group after `grace` seconds)."""
    wanted = f"ARCHI_API_HOST={api_url}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if wanted in environ.read_bytes().split(b"\0") and \
                    b"archipelago.executor" in (environ.parent / "cmdline").read_bytes():
                found.append(int(environ.parent.name))
        except OSError:
            continue  # gone, or not ours to read
    for pid in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while found and time.monotonic() < deadline:
        found = [pid for pid in found if Path(f"/proc/{pid}").exists()]
        time.sleep(0.05)
    for pid in found:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # executors lead their own session and process group


class ChildProcess:
    """An `archi` subcommand in a child process, logging to a file, stopped on exit."""

    log_path: Path
    process: subprocess.Popen | None = None

    def _spawn(self, *args: str) -> subprocess.Popen:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "archipelago", *args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        return self.process

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, like a crash or a power cut."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def start(self) -> ChildProcess:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ClusterProcess(ChildProcess):
    """`archi cluster up DIR` in a child process (API server and keepstore)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.config, self.admin_token = load_cluster(self.directory)
        self.api_url = self.config.api.url
        self.keep_url = f"http://{self.config.keepstore.listen}"
        self.log_path = self.directory / "cluster.log"

    def stop(self) -> None:
        """The cluster, and the containers its dispatcher started (a cluster of the demo, of `archi
        federation up` or of a test lives as long as its process: its executors would outlive it,
        each running on against an API that is gone)."""
        super().stop()
        stop_executors(self.api_url)

    def start(self) -> ClusterProcess:
        process = self._spawn("cluster", "up", str(self.directory))
        wait_for_http(self.api_url + "/_health/ping", process=process)
        wait_for_http(self.keep_url, process=process)
        return self


class KeepstoreProcess(ChildProcess):
    """`archi keepstore --config` in a child process, listening on a free loopback port."""

    def __init__(self, config: ClusterConfig, workdir: Path, port: int | None = None):
        self.port = port or free_port()
        config.keepstore.listen = f"127.0.0.1:{self.port}"
        self.config = config
        self.config_path = Path(workdir) / f"keepstore-{self.port}.yml"
        self.log_path = Path(workdir) / f"keepstore-{self.port}.log"
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> KeepstoreProcess:
        write_private(self.config_path, dump_config(self.config))
        wait_for_http(self.url, process=self._spawn("keepstore", "--config", str(self.config_path)))
        return self


class PostgresServer:
    """A throwaway PostgreSQL server on loopback, from the machine's own server binaries.

    Run as the 'postgres' system user (the server refuses root), in a directory outside any
    private temp dir so that user can reach it. `url` is its superuser database URL.
    """

    def __init__(self) -> None:
        self.bin = next((p for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
                         if (p / "initdb").exists()), None)
        self.root: Path | None = None
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def available(self) -> str | None:
        """None if this machine can run it, else the reason it cannot."""
        import pwd

        if self.bin is None:
            return "PostgreSQL server binaries not found (apt-get install postgresql)"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "no 'postgres' system user to run the server as"
        return None

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True)

    def start(self) -> PostgresServer:
        import tempfile

        if (reason := self.available) is not None:
            raise RuntimeError(reason)
        assert self.bin is not None
        self.root = Path(tempfile.mkdtemp(prefix="archi-pg-"))
        self.root.chmod(0o777)
        (self.root / "sock").mkdir(mode=0o777)
        (self.root / "sock").chmod(0o777)
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.root / "data"), "-A", "trust", "-U",
                          "postgres", "--no-sync")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "pg.log"),
                          "-w", "-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root / 'sock'} "
                          "-c fsync=off -c max_connections=200", "start")
        return self

    def create_database(self, name: str) -> str:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"),
                               isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def stop(self) -> None:
        import shutil

        if self.root is not None and self.bin is not None:
            self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop")
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
