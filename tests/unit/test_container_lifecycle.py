"""The container API's state machines, priority and reuse, on the local engine in process."""

from __future__ import annotations

import pytest

from archipelago.backend.interface import ListParams
from archipelago.errors import ArchipelagoError
from tests.support.backends import single_cluster

OUTPUT = ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:result.txt\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return single_cluster(tmp_path_factory.mktemp("compute"))


def request_attrs(**overrides):
    return {"command": ["echo", "hello"], "container_image": None, "output_path": "/out", "cwd": "/out",
            "runtime_constraints": {"ram": 100 << 20, "vcpus": 1}, "priority": 1, "state": "Committed",
            "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}, **overrides}


def status_of(call, *args) -> int:
    with pytest.raises(ArchipelagoError) as info:
        call(*args)
    return info.value.status


def finish(site, container_uuid: str, exit_code: int = 0) -> None:
    """What a dispatcher and executor do: lock, run, save output and log, complete."""
    backend, admin = site.backend, site.admin
    backend.act(admin, "containers", container_uuid, "lock", "POST", {})
    backend.update(admin, "containers", container_uuid, {"state": "Running"})
    runner = backend.get(admin, "containers", container_uuid)["runtime_user_uuid"]  # saved as it, as the executor does
    pdh = backend.create(admin, "collections", {"name": f"output for {container_uuid}", "owner_uuid": runner,
                                                "manifest_text": OUTPUT})["portable_data_hash"]
    backend.update(admin, "containers", container_uuid,
                   {"state": "Complete", "exit_code": exit_code, "output": pdh, "log": pdh})


def test_commit_queues_a_container_and_equal_requests_share_it(site):
    alice = site.new_user("alice")
    first = site.backend.create(alice, "container_requests", request_attrs(command=["echo", "share"]))
    assert first["state"] == "Committed" and first["container_count"] == 1
    container = site.backend.get(alice, "containers", first["container_uuid"])
    assert container["state"] == "Queued" and container["priority"] > 0
    assert "secret_mounts" not in container and "secret_mounts" not in first
    second = site.backend.create(alice, "container_requests", request_attrs(command=["echo", "share"]))
    assert second["container_uuid"] == first["container_uuid"]
    forced = site.backend.create(alice, "container_requests", request_attrs(command=["echo", "share"],
                                                                           use_existing=False))
    assert forced["container_uuid"] != first["container_uuid"]


def test_a_finished_container_is_reused_at_once_and_requests_get_their_own_collections(site):
    alice = site.new_user("alice")
    first = site.backend.create(alice, "container_requests", request_attrs(command=["echo", "reuse"]))
    finish(site, first["container_uuid"])
    done = site.backend.get(alice, "container_requests", first["uuid"])
    assert done["state"] == "Final" and done["output_uuid"] and done["log_uuid"]
    output = site.backend.get(alice, "collections", done["output_uuid"])
    assert output["owner_uuid"] == alice.user_uuid and output["properties"]["type"] == "output"
    again = site.backend.create(alice, "container_requests", request_attrs(command=["echo", "reuse"]))
    assert again["state"] == "Final" and again["container_uuid"] == first["container_uuid"]
    assert site.backend.get(alice, "collections", again["output_uuid"])["portable_data_hash"] == \
        output["portable_data_hash"]


def test_after_commit_only_some_fields_change_and_unchanged_values_are_accepted(site):
    alice = site.new_user("alice")
    request = site.backend.create(alice, "container_requests", request_attrs(state="Uncommitted"))
    assert request["container_uuid"] is None
    body = request_attrs(command=["echo", "rules"])
    request = site.backend.update(alice, "container_requests", request["uuid"], body)  # commits it
    assert request["state"] == "Committed" and request["container_uuid"]
    site.backend.update(alice, "container_requests", request["uuid"], body)  # the whole body again: fine
    assert status_of(site.backend.update, alice, "container_requests", request["uuid"],
                     {"command": ["rm", "-rf", "/"]}) == 422
    renamed = site.backend.update(alice, "container_requests", request["uuid"], {"name": "renamed", "priority": 5})
    assert renamed["name"] == "renamed" and renamed["priority"] == 5
    assert status_of(site.backend.delete, alice, "container_requests", request["uuid"]) == 422


def test_priority_zero_cancels_a_queued_container_and_finalizes_its_request(site):
    alice = site.new_user("alice")
    request = site.backend.create(alice, "container_requests", request_attrs(command=["sleep", "9"]))
    cancelled = site.backend.update(alice, "container_requests", request["uuid"], {"priority": 0})
    assert cancelled["state"] == "Final"
    assert site.backend.get(alice, "containers", request["container_uuid"])["state"] == "Cancelled"


def test_a_system_failure_is_retried_up_to_container_count_max(site):
    alice = site.new_user("alice")
    request = site.backend.create(alice, "container_requests",
                                  request_attrs(command=["flaky"], container_count_max=2))
    first = request["container_uuid"]
    site.backend.act(site.admin, "containers", first, "lock", "POST", {})
    site.backend.update(site.admin, "containers", first, {"state": "Cancelled"})
    retried = site.backend.get(alice, "container_requests", request["uuid"])
    assert retried["state"] == "Committed" and retried["container_count"] == 2
    assert retried["container_uuid"] != first
    site.backend.update(site.admin, "containers", retried["container_uuid"], {"state": "Cancelled"})
    final = site.backend.get(alice, "container_requests", request["uuid"])
    assert final["state"] == "Final" and final["container_count"] == 2 and final["output_uuid"] is None


def test_container_states_follow_the_arvados_machine(site):
    alice = site.new_user("alice")
    uuid = site.backend.create(alice, "container_requests", request_attrs(command=["states"]))["container_uuid"]
    admin = site.admin
    assert status_of(site.backend.update, admin, "containers", uuid, {"state": "Running"}) == 422  # not locked
    site.backend.act(admin, "containers", uuid, "lock", "POST", {})
    assert status_of(site.backend.act, admin, "containers", uuid, "lock", "POST", {}) == 422  # locked already
    site.backend.act(admin, "containers", uuid, "unlock", "POST", {})
    site.backend.act(admin, "containers", uuid, "lock", "POST", {})
    site.backend.update(admin, "containers", uuid, {"state": "Running"})
    assert status_of(site.backend.update, admin, "containers", uuid, {"state": "Complete"}) == 422  # no exit code
    assert status_of(site.backend.update, alice, "containers", uuid, {"state": "Cancelled"}) == 403
    assert status_of(site.backend.act, alice, "containers", uuid, "lock", "POST", {}) == 403


def test_a_containers_own_token_reports_status_and_its_requests_become_children(site):
    alice = site.new_user("alice")
    request = site.backend.create(alice, "container_requests", request_attrs(command=["runner"], priority=7))
    uuid = request["container_uuid"]
    site.backend.act(site.admin, "containers", uuid, "lock", "POST", {})
    auth = site.backend.act(site.admin, "containers", uuid, "auth", "GET", {})
    itself = site.backend.authenticate(f"v2/{auth['uuid']}/{auth['api_token']}")
    assert site.backend.get(itself, "containers", "current")["uuid"] == uuid
    site.backend.update(site.admin, "containers", uuid, {"state": "Running"})
    site.backend.update(itself, "containers", uuid, {"runtime_status": {"activity": "step 1"}})
    assert status_of(site.backend.update, itself, "containers", uuid, {"exit_code": 0}) == 403
    child = site.backend.create(itself, "container_requests", request_attrs(command=["child"]))
    assert child["requesting_container_uuid"] == uuid
    parent_priority = site.backend.get(site.admin, "containers", uuid)["priority"]
    assert site.backend.get(site.admin, "containers", child["container_uuid"])["priority"] == parent_priority
    site.backend.update(site.admin, "containers", uuid, {"state": "Cancelled"})
    assert site.backend.get(alice, "container_requests", child["uuid"])["priority"] == 0


def test_users_see_only_the_containers_of_their_requests(site):
    alice, bob = site.new_user("alice"), site.new_user("bob")
    uuid = site.backend.create(alice, "container_requests", request_attrs(command=["mine"]))["container_uuid"]
    assert status_of(site.backend.get, bob, "containers", uuid) == 404
    listed = site.backend.list(bob, "containers", ListParams(filters=[["uuid", "=", uuid]]))
    assert listed["items"] == []


def test_bad_requests_are_refused_clearly(site):
    alice = site.new_user("alice")
    assert status_of(site.backend.create, alice, "container_requests", request_attrs(command="echo hi")) == 422
    assert status_of(site.backend.create, alice, "container_requests", request_attrs(output_path=None)) == 422
    missing = {"/in": {"kind": "collection", "uuid": "z1111-4zz18-000000000000000"}}
    assert status_of(site.backend.create, alice, "container_requests", request_attrs(mounts=missing)) == 422
    # an image name must be in Keep where a runtime runs images; a bubblewrap cluster keeps the name
    kept = site.backend.create(alice, "container_requests", request_attrs(container_image="no/such:image"))
    assert site.backend.get(alice, "containers", kept["container_uuid"])["container_image"] == "no/such:image"
    site.local.config.containers.runtime = "docker"
    try:
        assert status_of(site.backend.create, alice, "container_requests",
                         request_attrs(container_image="no/such:other")) == 422
    finally:
        site.local.config.containers.runtime = "bubblewrap"
