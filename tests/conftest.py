"""Shared fixtures: real keepstore processes and a real S3-compatible server (moto) on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archipelago.run.ports import SERVICE_PORTS, free_port, wait_for_http
from archipelago.run.processes import KeepstoreProcess
from tests.support.clusters import cluster_config


def pytest_configure(config: pytest.Config) -> None:
    """Each xdist worker hands out loopback ports from a slice of its own (inherited by the
    `archi` processes it starts): a port one worker wrote into a config and has not bound yet
    is never another's free port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        width = len(SERVICE_PORTS) // 8
        first = SERVICE_PORTS.start + (int(worker[2:]) % 8) * width
        os.environ["ARCHI_SERVICE_PORTS"] = f"{first}-{first + width - 1}"


@pytest.fixture
def start_keepstore(tmp_path: Path) -> Iterator[Callable[..., KeepstoreProcess]]:
    """start_keepstore(volumes=None, **config overrides) -> a running keepstore process."""
    started: list[KeepstoreProcess] = []

    def start(volumes: list[dict[str, Any]] | None = None, **overrides: Any) -> KeepstoreProcess:
        n = len(started)
        volumes = volumes or [{"driver": "directory", "root": str(tmp_path / f"ks{n}")}]
        config = cluster_config(volumes, **overrides)
        process = KeepstoreProcess(config, tmp_path).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto S3 server process on loopback (real HTTP, real S3 protocol)."""
    executable = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("moto_server is not installed (pip install 'moto[server]')")
    port = free_port()
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    process = subprocess.Popen([executable, "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url, process=process)
        yield url
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def s3_bucket(s3_server: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    import re
    import secrets

    import boto3

    name = "keep-" + re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40] + "-" + secrets.token_hex(3)
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=name)
    return {"driver": "s3", "bucket": name, "endpoint": s3_server, "access_key": "testing",
            "secret_key": "testing"}


# ---------------------------------------------------------------------------- clusters and databases
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A real PostgreSQL server on loopback, started from the machine's binaries."""
    from archipelago.run.processes import PostgresServer

    server = PostgresServer()
    if (reason := server.available) is not None:
        pytest.skip(reason)
    with server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'archipelago.db'}"
    return request.getfixturevalue("postgres_server").create_database(f"t_{abs(hash(request.node.nodeid))}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Any]:
    """A whole cluster (`archi cluster init` + `archi cluster up`) in a child process, one per test
    module and database: tests share it, so each makes its own users and names."""
    from archipelago.run.cluster import init_cluster
    from archipelago.run.processes import ClusterProcess

    directory = tmp_path_factory.mktemp("cluster")
    init_cluster(directory, "z1111", database_url)
    with ClusterProcess(directory) as process:
        yield process
