"""WES attacked on a real cluster (SQLite and PostgreSQL): a stranger (made-up token, or none — as
wes-client 5.0's --run sends), a tenant reaching for another's run by its UUID (get, status, tasks,
cancel), a run id that is some other request, and run requests that try to make the API server
read its own files or leave the attachments (`file://`, absolute paths, `..` in names and URLs),
or that are malformed. Each refusal is paired with the owner's success."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.wes import call, run_request, submit

pytestmark = pytest.mark.integration
WORKFLOWS = Path(__file__).parents[1] / "integration" / "cwl"
MADE_UP = "v2/z1111-gj3su-000000000000000/madeupsecret0123456789abcdefghijklmnopqrstuvw"
WES = "/ga4gh/wes/v1"


def good(**extra: str) -> list[tuple[str, Any]]:
    return run_request("wc.cwl", {"infile": {"class": "File", "location": "x.txt"}},
                       {"wc.cwl": WORKFLOWS / "wc.cwl", "x.txt": b"one\ntwo\n"}, **extra)


@pytest.fixture(scope="module")
def admin(cluster: Any) -> ApiClient:
    return ApiClient(cluster.api_url, cluster.admin_token, insecure=True)


@pytest.fixture(scope="module")
def alice(admin: ApiClient) -> ApiClient:
    return new_user(admin, "alice")


@pytest.fixture(scope="module")
def bob(admin: ApiClient) -> ApiClient:
    return new_user(admin, "bob")


@pytest.fixture(scope="module")
def alices_run(alice: ApiClient) -> str:
    answer = submit(alice.base, alice.token, good())
    assert answer.status == 200, answer.data
    return str(answer.json()["run_id"])


def paths(run_id: str) -> list[tuple[str, str]]:
    return [("GET", f"{WES}/runs/{run_id}"), ("GET", f"{WES}/runs/{run_id}/status"),
            ("GET", f"{WES}/runs/{run_id}/tasks"), ("POST", f"{WES}/runs/{run_id}/cancel")]


def test_the_owner_sees_their_run_every_way(alice: ApiClient, alices_run: str) -> None:
    for method, path in paths(alices_run)[:-1]:
        assert call(method, alice.base + path, alice.token).status == 200, path
    assert alices_run in [r["run_id"] for r in call("GET", f"{alice.base}{WES}/runs", alice.token).json()["runs"]]


@pytest.mark.parametrize("token", [None, MADE_UP])
def test_a_stranger_gets_401_and_submits_nothing(alice: ApiClient, alices_run: str, token: str | None) -> None:
    for method, path in [("GET", f"{WES}/runs"), *paths(alices_run)]:
        answer = call(method, alice.base + path, token)
        assert answer.status == 401, (path, answer.data)
        assert set(answer.json()) == {"msg", "status_code"} and alices_run not in answer.data.decode()
    before = len(alice.container_requests.list(limit=1000)["items"])
    answer = submit(alice.base, token, good())  # wes-client 5.0 --run sends no Authorization header
    assert answer.status == 401 and ("Bearer" if token is None else "token") in answer.json()["msg"]
    assert call("GET", f"{alice.base}{WES}/runs/{alices_run}", alice.token).json()["state"] != "CANCELING"
    assert len(alice.container_requests.list(limit=1000)["items"]) == before


def test_another_tenant_cannot_see_or_cancel_a_run(alice: ApiClient, bob: ApiClient, alices_run: str) -> None:
    for method, path in paths(alices_run):
        answer = call(method, bob.base + path, bob.token)
        assert answer.status == 404, (path, answer.data)
    assert alices_run not in json.dumps(call("GET", f"{bob.base}{WES}/runs", bob.token).json())
    assert bob.base and alice.container_requests.get(alices_run)["priority"] == 500  # bob's cancel did nothing
    info = call("GET", f"{bob.base}{WES}/service-info", bob.token).json()
    assert sum(info["system_state_counts"].values()) == 0  # nothing of alice's counted for bob


def test_a_run_id_that_is_not_a_run_is_not_found(bob: ApiClient, alice: ApiClient) -> None:
    plain = bob.container_requests.create({"command": ["true"], "output_path": "/out", "container_image": None,
                                           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}},
                                           "runtime_constraints": {"ram": 1 << 26, "vcpus": 1}})
    for run_id in (plain["uuid"], "z1111-xvhdp-" + "0" * 15, "../../arvados/v1/users/current", "%2e%2e",
                   bob.users.current()["uuid"]):
        answer = call("GET", f"{bob.base}{WES}/runs/{run_id}", bob.token)
        assert answer.status == 404, (run_id, answer.data)


@pytest.mark.parametrize(("fields", "says"), [
    ([("workflow_url", "file:///etc/passwd")], "does not fetch URLs or read its own files"),
    ([("workflow_url", "/etc/passwd")], "does not fetch URLs or read its own files"),
    ([("workflow_url", "https://example.org/wf.cwl")], "does not fetch URLs"),
    ([("workflow_url", "../wc.cwl")], "not a plain path"),
    ([("workflow_url", "other.cwl")], "none of the attached files"),
    ([("workflow_type", "WDL")], "workflow_type must be CWL"),
    ([("workflow_type_version", "v9.9")], "workflow_type_version must be one of"),
    ([("workflow_params", "{not json")], "workflow_params must be a JSON object"),
    ([("workflow_params", "[1, 2]")], "workflow_params must be a JSON object"),
    ([("tags", "\"x\"")], "tags must be a JSON object"),
    ([("workflow_engine_parameters", json.dumps({"--outdir": "/root"}))], "unknown --outdir"),
    ([("colour", "blue")], "unknown field"),
    ([("workflow_engine", "toil")], "workflow_engine must be"),
])
def test_a_bad_run_request_is_400_naming_the_problem(alice: ApiClient, fields: list, says: str) -> None:
    names = {name for name, _ in fields}
    body = [(name, value) for name, value in good() if name not in names] + fields
    answer = submit(alice.base, alice.token, body)
    assert answer.status == 400 and says in answer.json()["msg"], answer.data


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/../../b.cwl", "a/./b", "x\\..\\y", ""])
def test_an_attachment_name_never_leaves_the_run_directory(alice: ApiClient, name: str) -> None:
    body = [*good(), ("workflow_attachment", (name, b"data", "text/plain"))]
    answer = submit(alice.base, alice.token, body)
    assert answer.status == 400, answer.data


def test_a_keep_workflow_the_caller_cannot_read_is_refused(alice: ApiClient, bob: ApiClient) -> None:
    mine = Collection(alice)
    mine.write("wc.cwl", (WORKFLOWS / "wc.cwl").read_bytes())
    pdh = mine.save_new("alice's workflow")["portable_data_hash"]
    body = [(n, v) for n, v in good() if n != "workflow_url"] + [("workflow_url", f"keep:{pdh}/wc.cwl")]
    answer = submit(bob.base, bob.token, body)
    assert answer.status in (404, 422) and "wc.cwl" not in answer.data.decode().replace(f"{pdh}/wc.cwl", ""), \
        answer.data
    assert not [c for c in bob.collections.list(limit=1000)["items"] if c["name"].startswith("workflow and inputs")]
    assert submit(alice.base, alice.token, body).status == 200


def test_a_token_scoped_to_reading_cannot_start_runs(alice: ApiClient) -> None:
    row = alice.api_client_authorizations.create({"scopes": ["GET /arvados/v1/collections/",
                                                             "GET /arvados/v1/container_requests"]})
    narrow = f"v2/{row['uuid']}/{row['api_token']}"
    answer = submit(alice.base, narrow, good())
    assert answer.status == 403 and "scopes" in answer.json()["msg"]
    assert call("GET", f"{alice.base}{WES}/runs", narrow).status == 200
