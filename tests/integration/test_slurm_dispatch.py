"""Containers as Slurm jobs: a cluster whose dispatcher is Slurm's runs a container through sbatch
on a real single-node Slurm that the test starts, and cancels one with scancel. Skipped, with the
reason, where Slurm cannot run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from archipelago.config import dump_config, load_config
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from tests.support import slurm
from tests.support.clusters import new_user
from tests.support.compute import container_of, submit, wait_container, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(slurm.unavailable() is not None, reason=str(slurm.unavailable())),
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]


@pytest.fixture
def slurm_env(monkeypatch):
    root = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))  # short paths: unix sockets
    try:
        with slurm.slurm(root) as env:
            monkeypatch.setenv("SLURM_CONF", env["SLURM_CONF"])  # the cluster process inherits it
            yield env
    except RuntimeError as exc:
        pytest.skip(f"Slurm cannot run here: {exc}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_containers_run_as_slurm_jobs_and_are_cancelled_with_scancel(tmp_path, slurm_env):
    init_cluster(tmp_path, "z1111")
    config = load_config(tmp_path / CONFIG_NAME)
    config.containers.dispatcher = "slurm"
    (tmp_path / CONFIG_NAME).write_text(dump_config(config))
    with ClusterProcess(tmp_path) as cluster:
        admin = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
        alice = new_user(admin, "alice")
        done = wait_final(alice, submit(alice, ["sh", "-c", "echo $SLURM_JOB_NAME > job.txt"],
                                        runtime_constraints={"ram": 64 << 20, "vcpus": 1},
                                        scheduling_parameters={"max_run_time": 120})["uuid"], timeout=120)
        container = alice.containers.get(done["container_uuid"])
        assert (container["state"], container["exit_code"]) == ("Complete", 0)
        log = Collection(alice, done["log_uuid"]).read("crunch-run.txt").decode()
        assert "runtime: bubblewrap" in log
        # cancelled while running: scancel, the executor stops the command and saves the logs
        request = submit(alice, ["sleep", "120"])
        uuid = container_of(alice, request["uuid"])
        wait_container(alice, uuid, ("Running",), timeout=60)
        queue = subprocess.run(["squeue", "-h", "-o", "%j"], env=slurm_env, capture_output=True, text=True).stdout
        assert uuid in queue
        alice.container_requests.update(request["uuid"], {"priority": 0})
        cancelled = wait_final(alice, request["uuid"], timeout=60)
        assert alice.containers.get(uuid)["state"] == "Cancelled" and cancelled["log_uuid"]
