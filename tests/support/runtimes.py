"""A real cluster (`archi cluster up`) whose containers run with a given runtime: bubblewrap, or
Docker/Podman with engines of the test's own and a busybox image stored in Keep."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from archipelago.config import dump_config, load_config
from archipelago.executor.runtimes import Podman
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient
from tests.support import docker

RUNTIMES = ("bubblewrap", "docker", "podman")


@dataclass
class RuntimeCluster:
    runtime: str
    process: ClusterProcess
    admin: ApiClient
    image: str | None  # the repo:tag requests name (None for bubblewrap, which runs host programs)

    def grant_image(self, user: ApiClient) -> None:
        """Images are read as the requesting user: share the image collection with `user`."""
        if self.image is None:
            return
        for record in self.admin.collections.list([["name", "=", f"Docker image {self.image}"]])["items"]:
            self.admin.links.create({"link_class": "permission", "name": "can_read", "head_uuid": record["uuid"],
                                     "tail_uuid": user.users.current()["uuid"]})


def unavailable(runtime: str) -> str | None:
    """None if `runtime` can run on this machine, else why not."""
    if runtime == "bubblewrap":
        return None if shutil.which("bwrap") else "bubblewrap is not installed"
    if runtime == "docker":
        return docker.unavailable()
    if shutil.which("podman") is None or shutil.which("runc") is None:
        return "podman or runc is not installed (apt-get install podman runc)"
    return None if docker.BUSYBOX.exists() else "busybox-static is not installed"


@contextmanager
def runtime_cluster(runtime: str, directory: Path, **containers: object) -> Iterator[RuntimeCluster]:
    """A running cluster whose dispatcher uses `runtime` (and other `containers` settings); skips the
    test where it cannot run."""
    if (reason := unavailable(runtime)) is not None:
        pytest.skip(reason)
    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="rt-", dir="/tmp"))  # short: unix socket paths are limited
        stack.callback(shutil.rmtree, scratch, True)
        init_cluster(directory, "z1111")
        config = load_config(directory / CONFIG_NAME)
        config.containers.runtime = runtime  # type: ignore[assignment]
        for key, value in containers.items():
            setattr(config.containers, key, value)
        engine: list[str] = []
        if runtime == "docker":
            try:
                host = stack.enter_context(docker.dockerd(scratch))
            except RuntimeError as exc:
                pytest.skip(f"dockerd cannot run here: {exc}")
            config.containers.docker_host, engine = host, ["docker", "-H", host]
        elif runtime == "podman":
            engine = ["podman", *Podman.GLOBAL, "--root", f"{scratch}/root", "--runroot", f"{scratch}/run"]
            probe = subprocess.run([*engine, "info"], capture_output=True, text=True)
            if probe.returncode != 0:
                pytest.skip(f"podman cannot run here: {probe.stderr.strip()[-300:]}")
            stack.callback(subprocess.run, [*engine, "system", "reset", "--force"], capture_output=True)
            config.containers.podman_storage = str(scratch)
        (directory / CONFIG_NAME).write_text(dump_config(config))
        process = stack.enter_context(ClusterProcess(directory))
        admin = ApiClient(process.api_url, process.admin_token or "", insecure=True)
        image = None
        if engine:
            image = f"archi-busybox:{runtime}"
            docker.busybox_image_in_keep(admin, engine, directory / "image", image)
        yield RuntimeCluster(runtime, process, admin, image)
