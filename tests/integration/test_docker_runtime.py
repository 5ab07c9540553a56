"""A cluster whose containers run in Docker: the image (built here from Debian's busybox-static)
is loaded from its collection in Keep, the command runs in it with its mounts, and the log says so.
Skipped, with the reason, where dockerd cannot run."""

from __future__ import annotations

import pytest

from archipelago.config import dump_config, load_config
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from tests.support import docker
from tests.support.clusters import new_user
from tests.support.compute import submit, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.skipif(docker.unavailable() is not None,
                                                          reason=str(docker.unavailable()))]


def test_a_container_runs_in_its_image_loaded_from_keep(tmp_path):
    import shutil
    import tempfile
    from pathlib import Path

    short = Path(tempfile.mkdtemp(prefix="dk-", dir="/tmp"))  # unix socket paths are limited to 108 bytes
    try:
        engine = docker.dockerd(short)
        host = engine.__enter__()
    except RuntimeError as exc:
        pytest.skip(f"dockerd cannot run here: {exc}")
    try:
        init_cluster(tmp_path / "cluster", "z1111")
        config = load_config(tmp_path / "cluster" / CONFIG_NAME)
        config.containers.runtime, config.containers.docker_host = "docker", host
        (tmp_path / "cluster" / CONFIG_NAME).write_text(dump_config(config))
        with ClusterProcess(tmp_path / "cluster") as cluster:
            admin = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
            image = docker.busybox_image_in_keep(admin, ["docker", "-H", host], tmp_path / "image",
                                                 "archi-busybox:test")
            alice = new_user(admin, "alice")
            [image_record] = admin.collections.list([["portable_data_hash", "=", image]])["items"]
            admin.links.create({"link_class": "permission", "name": "can_read", "head_uuid": image_record["uuid"],
                                "tail_uuid": alice.users.current()["uuid"]})  # images are read as the user
            data = Collection(alice)
            data.write("in.txt", b"one\ntwo\n")
            held = data.save_new("input")
            request = submit(alice, ["sh", "-c", "wc -l < /in/in.txt > count.txt; ls /bin > applets.txt"],
                             container_image="archi-busybox:test",
                             mounts={"/out": {"kind": "tmp"}, "/in": {"kind": "collection", "uuid": held["uuid"]}})
            done = wait_final(alice, request["uuid"], timeout=120)
            container = alice.containers.get(done["container_uuid"])
            log = Collection(alice, done["log_uuid"]).read("crunch-run.txt").decode()
            assert (container["state"], container["exit_code"]) == ("Complete", 0), log
            output = Collection(alice, done["output_uuid"])
            assert output.read("count.txt").strip() == b"2"
            assert b"busybox" in output.read("applets.txt")  # the image's /bin, not this host's
            assert "runtime: docker" in log and "archi-busybox:test" not in log.split("runtime:")[0]
    finally:
        engine.__exit__(None, None, None)
        shutil.rmtree(short, ignore_errors=True)
