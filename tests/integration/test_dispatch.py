"""The dispatcher as its own process (`archi dispatch`), killed and restarted mid-run: the running
container is adopted, not lost and not started twice."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

from archipelago.compute.dispatch.service import state_directory
from archipelago.config import dump_config, load_config
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.compute import container_of, submit, wait_container, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]


@pytest.fixture
def cluster(tmp_path):
    init_cluster(tmp_path, "z1111")
    config = load_config(tmp_path / CONFIG_NAME)
    config.containers.dispatcher = "none"  # this test runs its own
    config.containers.work_dir = tmp_path / "work"
    (tmp_path / CONFIG_NAME).write_text(dump_config(config))
    with ClusterProcess(tmp_path) as process:
        yield process


def start_dispatcher(directory) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "archipelago", "dispatch", "--config",
                             str(directory / CONFIG_NAME)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_restarted_dispatcher_adopts_the_running_container(cluster):
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    request = submit(alice, ["sh", "-c", "sleep 3; echo ok > o.txt"])
    uuid = container_of(alice, request["uuid"])
    assert alice.containers.get(uuid)["state"] == "Queued"  # nobody dispatches yet
    first = start_dispatcher(cluster.directory)
    try:
        wait_container(admin, uuid, ("Running",))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = start_dispatcher(cluster.directory)
    pids = state_directory(load_config(cluster.directory / CONFIG_NAME))
    try:
        done = wait_final(alice, request["uuid"], timeout=60)
        deadline = time.monotonic() + 10
        while any(p.suffix == ".pid" for p in pids.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)  # the dispatcher notices the end on its next look
        assert not [p.name for p in pids.iterdir() if p.suffix == ".pid"]
    finally:
        second.terminate()
        second.wait(10)
    container = admin.containers.get(uuid)
    assert (container["state"], container["exit_code"], container["lock_count"]) == ("Complete", 0, 1)
    assert done["container_count"] == 1 and done["container_uuid"] == uuid
    assert Collection(alice, done["output_uuid"]).read("o.txt") == b"ok\n"


def test_a_restarted_dispatcher_adopts_a_container_its_warm_executor_took(cluster):
    """The second container goes to the executor kept warm (its command line names no container):
    after a restart it is still recognised, by its work directory, and adopted, not run twice."""
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    first = start_dispatcher(cluster.directory)
    try:
        wait_final(alice, submit(alice, ["true"], use_existing=False)["uuid"], timeout=60)  # a warm one is made
        request = submit(alice, ["sh", "-c", "sleep 3; echo warm > o.txt"], use_existing=False)
        uuid = container_of(alice, request["uuid"])
        wait_container(admin, uuid, ("Running",))
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    second = start_dispatcher(cluster.directory)
    try:
        done = wait_final(alice, request["uuid"], timeout=60)
    finally:
        second.terminate()
        second.wait(10)
    container = admin.containers.get(uuid)
    assert (container["state"], container["lock_count"]) == ("Complete", 1)
    assert done["container_count"] == 1 and Collection(alice, done["output_uuid"]).read("o.txt") == b"warm\n"
