"""`archi run`'s plan against what runs, on a real three-cluster federation on loopback: the
meta-analysis runs where its plan said and moves no more than the plan allowed (the keepstores'
counters and each container's own count); a failing record ends the run at once; a refused plan
submits nothing anywhere; `project_uuid` owns the requests; a container cannot forge its count."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from archipelago.cwl.bounds import READ_KEY
from archipelago.cwl.runner import Runner
from archipelago.run.demo_meta import EXAMPLE, _generate
from archipelago.sdk import ApiClient, Collection
from archipelago.sdk.copy import client_for_cluster
from tests.support.clusters import new_user, running_federation
from tests.support.compute import submit, wait_final

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]
WORKFLOWS = Path(__file__).parent / "cwl"
CLUSTERS = ("z1111", "z2222", "z3333")


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_federation(tmp_path_factory.mktemp("plan"), 3) as federation:
        yield federation


def archi(user: ApiClient, cwd: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ARCHI_API_HOST": user.base, "ARCHI_API_TOKEN": user.token, "ARCHI_API_HOST_INSECURE": "1"}
    return subprocess.run([sys.executable, "-m", "archipelago", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def read(client: ApiClient, output: dict[str, Any]) -> bytes:
    pdh, _, name = str(output["location"])[len("keep:"):].partition("/")
    return Collection(client, pdh).read(name)


def requests_everywhere(federation: Any) -> dict[str, int]:
    return {c: federation[c].container_requests.list(limit=0)["items_available"] for c in CLUSTERS}


def test_the_meta_analysis_runs_where_it_was_planned_and_moves_within_the_plans_bounds(federation, tmp_path):
    """First in the module: no keepstore has cached anything of this run, so 'at least' holds too."""
    analyst = new_user(federation["z1111"], "analyst")
    me = analyst.users.current()["uuid"]
    cohorts = []
    for n, cluster in enumerate(CLUSTERS, start=1):
        admin = federation[cluster]
        project = admin.groups.create({"name": "cohort", "group_class": "project", "residency": "cluster"},
                                      ensure_unique_name=True)
        data = _generate(f"site-{cluster}", n)
        cohort = Collection(admin)
        cohort.write("cohort.csv", data[:data.index(b"\n", 300_000) + 1])
        record = cohort.save_new(f"cohort {cluster}", owner_uuid=project["uuid"])
        admin.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": me,
                            "head_uuid": project["uuid"]})
        cohorts.append({"class": "File", "location": f"keep:{record['portable_data_hash']}/cohort.csv"})
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"cohorts": cohorts, "clusters": list(CLUSTERS), "min_age": 50,
                               "extract_script": {"class": "File", "path": str(EXAMPLE / "extract.py")},
                               "merge_script": {"class": "File", "path": str(EXAMPLE / "merge.py")}}))
    planned = archi(analyst, tmp_path, "run", "--plan", "--json", str(EXAMPLE / "meta-analysis.cwl"), "job.json")
    assert planned.returncode == 0, planned.stderr[-2000:]
    plan = {step["key"]: step["cluster"] for step in json.loads(planned.stdout)["steps"]}
    assert plan == {"extract[0]": "z1111", "extract[1]": "z2222", "extract[2]": "z3333", "merge": "z1111"}
    assert requests_everywhere(federation) == {c: 0 for c in CLUSTERS}  # planning wrote nothing

    runner = Runner(analyst)
    _, status = runner.run(EXAMPLE / "meta-analysis.cwl", job)
    assert status == "success", runner.failures
    assert runner.plan_ is not None
    assert {key: item.ran_on for key, item in runner.plan_.items.items()} == plan
    moved = {edge: (c.at_least, c.keepstores, c.containers, c.at_most) for edge, c in runner.crossings.items()}
    # the scripts went out and the summaries came home; no cohort byte crossed
    assert set(moved) == {"z1111→z2222", "z1111→z3333", "z2222→z1111", "z3333→z1111"}, moved
    for edge, (least, keepstores, containers, most) in moved.items():
        assert least <= keepstores <= most, (edge, moved[edge])
        assert containers <= most, (edge, moved[edge])
        assert least > 0, edge
    assert runner.exceeded == []


def test_records_placed_by_earlier_steps_outputs_are_planned_as_they_appear(federation, tmp_path):
    erin = new_user(federation["z1111"], "erin")
    (tmp_path / "none.json").write_text("{}")
    runner = Runner(erin)
    plan = runner.plan(WORKFLOWS / "fan-out-clusters.cwl", tmp_path / "none.json")
    assert plan.items["count[*]"].cluster is None and plan.items["count[*]"].records_later
    outputs, status = runner.run(WORKFLOWS / "fan-out-clusters.cwl", tmp_path / "none.json")
    assert status == "success", runner.failures
    assert runner.plan_ is not None
    placed = {k: (i.cluster, i.ran_on, i.decided_at_run_time) for k, i in runner.plan_.items.items()}
    assert placed == {"name": ("z1111", "z1111", False), "count[0]": ("z2222", "z2222", True),
                      "count[1]": ("z3333", "z3333", True)}
    name_output = runner.plan_.items["name"].output
    assert runner.plan_.items["count[0]"].mounts == [name_output]  # re-planned with what it reads
    assert runner.crossings["z1111→z2222"].at_most > 0 and runner.exceeded == []
    assert [read(erin, o) for o in outputs["counts"]] == [b"1\n", b"2\n"]


def test_a_refused_plan_names_every_problem_and_submits_nothing_anywhere(federation, tmp_path):
    alice = new_user(federation["z1111"], "alice")
    me = alice.users.current()["uuid"]
    theirs = federation["z2222"].groups.create({"name": "not hers", "group_class": "project"}, ensure_unique_name=True)
    project = federation["z3333"].groups.create({"name": "kept", "group_class": "project", "residency": "cluster"},
                                                ensure_unique_name=True)
    federation["z3333"].links.create({"link_class": "permission", "name": "can_read", "tail_uuid": me,
                                      "head_uuid": project["uuid"]})
    kept = Collection(federation["z3333"])
    kept.write("rows.txt", b"a\nb\n")
    restricted = kept.save_new("kept", owner_uuid=project["uuid"])["portable_data_hash"]
    (tmp_path / "lines.txt").write_text("one\ntwo\n")
    local = {"class": "File", "path": "lines.txt"}
    (tmp_path / "job.json").write_text(json.dumps({
        "files": [local, local, {"class": "File", "location": f"keep:{restricted}/rows.txt"}],
        "clusters": ["z9999", "z2222", "z1111"], "projects": ["", theirs["uuid"], ""]}))
    before = requests_everywhere(federation)
    result = archi(alice, tmp_path, "run", "--json", str(WORKFLOWS / "scatter-targets.cwl"), "job.json")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    refused = {r["step"]: r["problem"] for r in json.loads(result.stdout)["plan"]["refused"]}
    assert refused == {
        "count[0]": "unknown or invalid cluster id 'z9999' (this federation: z1111, z2222, z3333)",
        "count[1]": f"project {theirs['uuid']}: missing or not readable",
        "count[2]": f"collection {restricted} (kept) stays on cluster z3333 (residency): "
                    "a step on z1111 would have to read it"}
    assert requests_everywhere(federation) == before
    text = archi(alice, tmp_path, "run", str(WORKFLOWS / "scatter-targets.cwl"), "job.json")
    assert text.returncode == 2 and "Traceback" not in text.stderr
    assert all(key in text.stderr for key in refused) and "nothing was submitted" in text.stderr


def test_a_failing_record_ends_the_run_at_once_and_its_siblings_are_cancelled(federation, tmp_path):
    bob = new_user(federation["z1111"], "bob")
    # two records of one core each: both run at once on a 2-core machine (a third would queue
    # behind the sleepers and record 0 might never start: waiting for cores is no bug)
    (tmp_path / "job.yml").write_text("records: [0, 1]\n")
    try:
        # the deadline fails the test if the run waits for the other record's ten-minute sleep
        result = archi(bob, tmp_path, "run", str(WORKFLOWS / "fail-fast.cwl"), "job.yml", timeout=120)
        assert result.returncode == 1, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert result.stderr.count("work[0] failed on cluster z1111 (exit code 3)") == 1  # said once
        assert result.stderr.count("record 0: the input is broken") == 1  # the end of its stderr
        assert "its log: collection z1111-4zz18-" in result.stderr
        requests = bob.container_requests.list(filters=[["name", "like", "work%"]])["items"]
        sleepers = [r for r in requests if r["name"] != "work"]  # cwltool names records work, work_2
        assert len(requests) == 2 and all(r["priority"] == 0 for r in sleepers), requests
        for request in sleepers:
            assert wait_final(bob, request["uuid"], timeout=60)["state"] == "Final"
    finally:  # a sleeper left by a failure here must not hold the cores the module's later tests need
        running = bob.container_requests.list(filters=[["state", "=", "Committed"], ["priority", ">", 0]])
        for request in running["items"]:
            bob.container_requests.update(request["uuid"], {"priority": 0})


def test_project_uuid_owns_the_request_and_its_output_on_its_cluster(federation, tmp_path):
    carol = new_user(federation["z1111"], "carol")
    there = client_for_cluster(carol, "z2222").groups.create({"name": "results", "group_class": "project"},
                                                              ensure_unique_name=True)
    (tmp_path / "lines.txt").write_text("1\n2\n3\n")
    (tmp_path / "job.json").write_text(json.dumps({"files": [{"class": "File", "path": "lines.txt"}],
                                                   "clusters": ["z2222"], "projects": [there["uuid"]]}))
    runner = Runner(carol)
    _, status = runner.run(WORKFLOWS / "scatter-targets.cwl", tmp_path / "job.json")
    assert status == "success", runner.failures
    (step,) = runner.steps.values()
    request = carol.container_requests.get(step.request_uuid)
    assert request["uuid"].startswith("z2222-") and request["owner_uuid"] == there["uuid"]
    assert carol.collections.get(request["output_uuid"])["owner_uuid"] == there["uuid"]
    assert runner.plan_ is not None and runner.plan_.items["count[0]"].project == there["uuid"]


def test_a_container_cannot_forge_the_count_of_what_it_read(federation, tmp_path):
    """The executor's count goes in runtime_status as the container ends, over whatever the
    container wrote there (one with API access can write its own runtime_status)."""
    dave = new_user(federation["z1111"], "dave")
    data = Collection(dave)
    data.write("in.txt", b"x" * 5000)
    pdh = data.save_new("input")["portable_data_hash"]
    forge = ("import json, os, ssl, urllib.request as u\n"
             "host, token = os.environ['ARVADOS_API_HOST'], os.environ['ARVADOS_API_TOKEN']\n"
             "context, auth = ssl._create_unverified_context(), {'Authorization': 'Bearer ' + token}\n"
             "me = json.load(u.urlopen(u.Request(f'https://{host}/arvados/v1/containers/current', headers=auth),"
             " context=context))\n"
             f"body = json.dumps({{'container': {{'runtime_status': {{'{READ_KEY}': {{'z9999': 10**12}},"
             " 'activity': 'forging'}}}).encode()\n"
             "u.urlopen(u.Request(f'https://{host}/arvados/v1/containers/' + me['uuid'], data=body, method='PUT',"
             " headers={**auth, 'Content-Type': 'application/json'}), context=context)\n"
             "print(len(open('/in/in.txt').read()))\n")
    request = submit(dave, ["python3", "-c", forge], runtime_constraints={"ram": 256 << 20, "vcpus": 1, "API": True},
                     mounts={"/out": {"kind": "tmp", "capacity": 1 << 20},
                             "/in": {"kind": "collection", "portable_data_hash": pdh}})
    final = wait_final(dave, request["uuid"], timeout=120)
    container = dave.containers.get(final["container_uuid"])
    assert container["exit_code"] == 0, container
    status = container["runtime_status"]
    assert status[READ_KEY] == {"z1111": 5000}  # what it read, held here: not what it claimed
    assert status["activity"] == "forging"  # what else it said of itself is kept
