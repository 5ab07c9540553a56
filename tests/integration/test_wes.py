"""WES 1.1 on a real two-cluster federation: a CWL workflow submitted as a WES run (multipart, its
files attached) runs through our runner with arv:ClusterTarget honoured — step1 on z2222, step2 at
home — and is followed through status, the run log (outputs, logs downloadable), tasks and
service-info; then an independent client (wes-service's wes-client) reads it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.clusters import new_user, running_federation
from tests.support.venvs import tool_venv
from tests.support.wes import call, run_request, submit, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]
WORKFLOWS = Path(__file__).parent / "cwl"


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_federation(tmp_path_factory.mktemp("wes"), 2) as federation:
        yield federation


@pytest.fixture(scope="module")
def finished(federation: Any) -> dict[str, Any]:
    """One run, from submission to its end: {base, token, run_id, state}."""
    alice = new_user(federation["z1111"], "alice")
    fields = run_request("wf-cluster-target.cwl", {"infile": {"class": "File", "location": "lines.txt"},
                                                   "where": "z2222"},
                         {"wf-cluster-target.cwl": WORKFLOWS / "wf-cluster-target.cwl", "wc.cwl": WORKFLOWS / "wc.cwl",
                          "cat.cwl": WORKFLOWS / "cat.cwl", "lines.txt": b"".join(b"line %d\n" % n for n in range(7))},
                         tags=json.dumps({"project": "trial-7"}))
    answer = submit(alice.base, alice.token, fields)
    assert answer.status == 200, answer.data
    run_id = answer.json()["run_id"]
    state = wait_final(alice.base, alice.token, run_id)
    return {"base": alice.base, "token": alice.token, "run_id": run_id, "state": state, "client": alice,
            "certificate": str(federation["processes"]["z1111"].directory / "tls.crt")}


def test_a_run_completes_with_its_steps_where_cluster_target_says(finished: dict[str, Any]) -> None:
    base, token, run_id = finished["base"], finished["token"], finished["run_id"]
    log = call("GET", f"{base}/ga4gh/wes/v1/runs/{run_id}", token).json()
    assert finished["state"] == "COMPLETE", log
    assert run_id.startswith("z1111-xvhdp-") and log["state"] == "COMPLETE"
    assert log["request"]["workflow_url"] == "wf-cluster-target.cwl"
    assert log["request"]["tags"] == {"project": "trial-7"}
    assert log["request"]["workflow_params"]["where"] == "z2222"
    result = log["outputs"]["result"]
    assert result["location"].startswith("keep:") and result["size"] == 2  # "7\n"
    pdh, _, name = result["location"][5:].partition("/")
    data = call("GET", f"{base}/arvados/v1/collections/{pdh}/files/{name}", token)
    assert data.status == 200 and data.data == b"7\n"
    assert log["run_log"]["exit_code"] == 0 and log["run_log"]["cmd"][0] == "sh"
    stderr = call("GET", log["run_log"]["stderr"], token)
    assert stderr.status == 200
    tasks = call("GET", log["task_logs_url"], token).json()
    clusters = sorted(t["id"][:5] for t in tasks["task_logs"])
    assert clusters == ["z1111", "z2222"] and tasks["next_page_token"] == ""
    first = call("GET", f"{log['task_logs_url']}?page_size=1", token).json()
    assert len(first["task_logs"]) == 1 and first["next_page_token"] == "1"
    one = tasks["task_logs"][0]
    assert call("GET", f"{log['task_logs_url']}/{one['id']}", token).json() == one
    assert all(t["exit_code"] == 0 for t in tasks["task_logs"])


def test_runs_are_listed_newest_first_in_pages(finished: dict[str, Any]) -> None:
    base, token = finished["base"], finished["token"]
    listed = call("GET", f"{base}/ga4gh/wes/v1/runs", token).json()
    assert [r["run_id"] for r in listed["runs"]] == [finished["run_id"]]
    assert listed["runs"][0]["state"] == "COMPLETE" and listed["runs"][0]["tags"] == {"project": "trial-7"}
    assert listed["next_page_token"] == ""


def test_service_info_names_cwl_versions_the_engine_and_the_federation(finished: dict[str, Any]) -> None:
    info = call("GET", f"{finished['base']}/ga4gh/wes/v1/service-info", finished["token"]).json()
    assert info["type"]["artifact"] == "wes" and info["supported_wes_versions"] == ["1.1.0"]
    assert info["workflow_type_versions"]["CWL"]["workflow_type_version"] == ["v1.0", "v1.1", "v1.2"]
    assert "cwltool" in info["workflow_engine_versions"]["archi-cwl-runner"]["workflow_engine_version"][0]
    assert info["tags"]["federation"] == "z1111,z2222" and info["system_state_counts"] == {"COMPLETE": 1}


def test_a_run_is_cancelled(federation: Any, finished: dict[str, Any]) -> None:
    alice = finished["client"]
    fields = run_request("wc.cwl", {"infile": {"class": "File", "location": "x.txt"}},
                         {"wc.cwl": WORKFLOWS / "wc.cwl", "x.txt": b"x\n"})
    run_id = submit(alice.base, alice.token, fields).json()["run_id"]
    assert call("POST", f"{alice.base}/ga4gh/wes/v1/runs/{run_id}/cancel", alice.token).json() == {"run_id": run_id}
    assert wait_final(alice.base, alice.token, run_id) == "CANCELED"


def test_wes_client_reads_service_info_runs_and_a_run(finished: dict[str, Any], tmp_path: Path) -> None:
    """wes-service's wes-client (5.0) — an independent implementation of the client side — with the
    token it sends as `Authorization` (its --info/--list/--get do; its --run does not, so runs are
    submitted as above)."""
    bin_dir = tool_venv("wes-service", "wes-service==5.0")
    base = finished["base"]
    host = base.split("://", 1)[1]
    env = {**os.environ, "WES_API_HOST": host, "WES_API_AUTH": f"Bearer {finished['token']}",
           "WES_API_PROTO": "https", "REQUESTS_CA_BUNDLE": finished["certificate"]}  # the cluster's own

    def wes_client(*args: str) -> Any:
        result = subprocess.run([str(bin_dir / "wes-client"), *args], env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout)

    assert wes_client("--info")["supported_wes_versions"] == ["1.1.0"]
    assert finished["run_id"] in [r["run_id"] for r in wes_client("--list")["runs"]]
    got = wes_client("--get", finished["run_id"])
    assert got["state"] == "COMPLETE" and got["outputs"]["result"]["size"] == 2
