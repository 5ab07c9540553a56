"""The official `arvados-cwl-runner` (from PyPI, unchanged, in a venv of its own) runs a two-step
CWL workflow against an Archipelago cluster with `--api=containers --local` and prints its output
object: discovery, config, container requests committed by full-body update, containers run by our
dispatcher and executor, output and log collections, the tag link at the end."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from archipelago.config import dump_config, load_config
from archipelago.run.cluster import CONFIG_NAME, init_cluster
from archipelago.run.federation import init_federation
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient, Collection
from tests.support.compute import register_image
from tests.support.venvs import tool_venv

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]
ACR = "arvados-cwl-runner==3.2.1"
WORKFLOWS = Path(__file__).parent / "cwl"


def test_the_official_runner_runs_a_two_step_workflow_locally(tmp_path):
    bin_dir = tool_venv("acr-3.2.1", ACR)
    init_cluster(tmp_path / "cluster", "z1111")
    with ClusterProcess(tmp_path / "cluster") as cluster:
        admin = ApiClient(cluster.api_url, cluster.admin_token or "", insecure=True)
        register_image(admin, "arvados/jobs:3.2.1")  # what the runner gives tools without DockerRequirement
        (tmp_path / "lines.txt").write_text("a\nb\nc\n")
        (tmp_path / "job.yml").write_text("infile:\n  class: File\n  path: lines.txt\n")
        env = {**os.environ, "ARVADOS_API_HOST": cluster.api_url.split("://")[1],
               "ARVADOS_API_TOKEN": cluster.admin_token or "", "ARVADOS_API_HOST_INSECURE": "1",
               "HOME": str(tmp_path / "home")}
        run = subprocess.run([str(bin_dir / "arvados-cwl-runner"), "--api=containers", "--local",
                              str(WORKFLOWS / "wf.cwl"), "job.yml"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Final process status is success" in run.stderr
        result = json.loads(run.stdout)["result"]
        assert result["class"] == "File" and result["basename"] == "out.txt" and result["size"] == 2
        pdh, _, name = result["location"][len("keep:"):].partition("/")
        assert Collection(admin, pdh).read(name) == b"3\n"
        steps = admin.container_requests.list([["state", "=", "Final"]])["items"]
        assert len(steps) == 2 and all(s["output_uuid"] and s["log_uuid"] for s in steps)


def test_the_official_runner_runs_a_step_on_another_cluster_with_cluster_target(tmp_path):
    """step1 runs on z2222 (its cluster_id an expression over the inputs), reading its input from
    z1111 through the federation; step2 runs at home on step1's output, read back from z2222."""
    from tests.support.clusters import running_federation

    bin_dir = tool_venv("acr-3.2.1", ACR)
    with running_federation(tmp_path / "fed", 2) as federation:
        home = federation["z1111"]
        register_image(home, "arvados/jobs:3.2.1")
        (tmp_path / "lines.txt").write_text("a\nb\nc\nd\n")
        (tmp_path / "job.yml").write_text("infile:\n  class: File\n  path: lines.txt\nwhere: z2222\n")
        env = {**os.environ, "ARVADOS_API_HOST": home.base.split("://")[1], "ARVADOS_API_TOKEN": home.token,
               "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path / "home")}
        run = subprocess.run([str(bin_dir / "arvados-cwl-runner"), "--api=containers", "--local",
                              str(WORKFLOWS / "wf-cluster-target.cwl"), "job.yml"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        result = json.loads(run.stdout)["result"]
        pdh, _, name = result["location"][len("keep:"):].partition("/")
        assert Collection(home, pdh).read(name) == b"4\n"
        remote = federation["z2222"].container_requests.list(limit=10)["items"]
        assert [r["state"] for r in remote] == ["Final"] and remote[0]["uuid"].startswith("z2222-xvhdp-")
        local = home.container_requests.list(limit=10)["items"]
        assert len(local) == 1 and local[0]["command"][0] == "cat"  # only step2 ran at home


def test_the_official_runner_submitted_runs_a_cluster_target_workflow_from_a_container(tmp_path):
    """--submit: the official runner itself runs in a container on the home cluster (a site puts
    its venv on the containers' PATH with containers.host_path), finds itself with containers/current,
    submits its steps as children (one on z2222), and sets its own output."""
    bin_dir = tool_venv("acr-3.2.1", ACR)
    members = init_federation(tmp_path / "fed", 2)
    home_config = members[0].directory / CONFIG_NAME
    config = load_config(home_config)
    config.containers.host_path = [str(bin_dir)]
    home_config.write_text(dump_config(config))
    with contextlib.ExitStack() as stack:
        for member in members:
            stack.enter_context(ClusterProcess(member.directory))
        home = ApiClient(members[0].api_url, members[0].admin_token, insecure=True)
        register_image(home, "arvados/jobs:3.2.1")
        (tmp_path / "lines.txt").write_text("1\n2\n3\n4\n5\n6\n")
        (tmp_path / "job.yml").write_text("infile:\n  class: File\n  path: lines.txt\nwhere: z2222\n")
        env = {**os.environ, "ARVADOS_API_HOST": home.base.split("://")[1], "ARVADOS_API_TOKEN": home.token,
               "ARVADOS_API_HOST_INSECURE": "1", "HOME": str(tmp_path / "home")}
        run = subprocess.run([str(bin_dir / "arvados-cwl-runner"), "--api=containers", "--submit",
                              str(WORKFLOWS / "wf-cluster-target.cwl"), "job.yml"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-4000:]
        result = json.loads(run.stdout)["result"]
        pdh, _, name = result["location"][len("keep:"):].partition("/")
        assert Collection(home, pdh).read(name) == b"6\n"
        runner = [r for r in home.container_requests.list(limit=20)["items"] if not r["requesting_container_uuid"]]
        assert len(runner) == 1 and runner[0]["command"][0] == "arvados-cwl-runner"
