"""A cluster whose containers run in rootful Podman (runc, cgroupfs): the image (built here from
Debian's busybox-static) is loaded from Keep and the command runs in it. Skipped, with the reason,
where podman cannot run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from archipelago.config import dump_config, load_config
from archipelago.executor.runtimes import Podman
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from tests.support import docker
from tests.support.clusters import new_user
from tests.support.compute import submit, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("podman") is None or shutil.which("runc") is None,
                                 reason="podman or runc is not installed (apt-get install podman runc)"),
              pytest.mark.skipif(not Path("/bin/busybox").exists(), reason="busybox-static is not installed")]


def test_a_container_runs_in_its_image_loaded_from_keep_with_podman(tmp_path):
    storage = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))  # short paths: podman's sockets
    engine = ["podman", *Podman.GLOBAL, "--root", f"{storage}/root", "--runroot", f"{storage}/run"]
    probe = subprocess.run([*engine, "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"podman cannot run here: {probe.stderr.strip()[-300:]}")
    try:
        init_cluster(tmp_path / "cluster", "z1111")
        config = load_config(tmp_path / "cluster" / CONFIG_NAME)
        config.containers.runtime, config.containers.podman_storage = "podman", str(storage)
        (tmp_path / "cluster" / CONFIG_NAME).write_text(dump_config(config))
        with ClusterProcess(tmp_path / "cluster") as cluster:
            admin = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
            image = docker.busybox_image_in_keep(admin, engine, tmp_path / "image", "archi-busybox:podman")
            alice = new_user(admin, "alice")
            [record] = admin.collections.list([["portable_data_hash", "=", image]])["items"]
            admin.links.create({"link_class": "permission", "name": "can_read", "head_uuid": record["uuid"],
                                "tail_uuid": alice.users.current()["uuid"]})
            done = wait_final(alice, submit(alice, ["sh", "-c", "ls /bin > applets.txt; echo ok > ok.txt"],
                                            container_image="archi-busybox:podman",
                                            mounts={"/out": {"kind": "tmp"}})["uuid"], timeout=180)
            container = alice.containers.get(done["container_uuid"])
            log = Collection(alice, done["log_uuid"]).read("crunch-run.txt").decode()
            assert (container["state"], container["exit_code"]) == ("Complete", 0), log
            output = Collection(alice, done["output_uuid"])
            assert output.read("ok.txt") == b"ok\n" and b"busybox" in output.read("applets.txt")
            assert "runtime: podman" in log
    finally:
        subprocess.run([*engine, "system", "reset", "--force"], capture_output=True)
        shutil.rmtree(storage, ignore_errors=True)
