"""A tenant attacking another through the container API of a real cluster (`archi cluster up` with
its dispatcher and executors; SQLite and PostgreSQL), as issue 17 describes it:

- defect 3: mount another user's private collection by UUID or by PDH; have one's container claim
  the victim's collection as its output;
- defect 4: join the victim's running container with an otherwise equal request;
- defect 9: bodies that used to be accepted (and stall the dispatcher, or answer 500).

Each attack is paired with what the same step does when it is allowed, so no test passes merely
because everything is refused. The rules one at a time: tests/security/test_container_access.py."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from archipelago.sdk import ApiClient, ApiRequestError, Collection
from tests.support.clusters import new_user
from tests.support.compute import request_attrs, submit, wait_container

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")]


@pytest.fixture(scope="module")
def admin(cluster: Any) -> ApiClient:
    return ApiClient(cluster.api_url, cluster.admin_token, insecure=True)


@pytest.fixture(scope="module")
def victim(admin: ApiClient) -> ApiClient:
    return new_user(admin, "victim")


@pytest.fixture(scope="module")
def secret(victim: ApiClient) -> dict[str, Any]:
    """The victim's private collection: a file only they may read."""
    collection = Collection(victim)
    collection.write("secret.txt", b"the victim's private data\n")
    return collection.save_new("private")


def status(call: Any) -> int:
    try:
        call()
    except ApiRequestError as exc:
        return exc.status
    return 200


def reading(source: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """A request that prints /in/secret.txt, with /in the given collection mount."""
    mounts = {"/out": {"kind": "tmp", "capacity": 1 << 20}, "/in": {"kind": "collection", **source}}
    return {"mounts": mounts, **overrides}


def container_client(admin: ApiClient, container_uuid: str) -> ApiClient:
    """What a container's own process holds: its token (the executor gets it from containers/auth)."""
    auth = admin.request("GET", f"containers/{container_uuid}/auth")
    return ApiClient(admin.base, f"v2/{auth['uuid']}/{auth['api_token']}", insecure=True)


def cancel(client: ApiClient, *requests: dict[str, Any]) -> None:
    for request in requests:
        client.container_requests.update(request["uuid"], {"priority": 0})


@pytest.mark.parametrize("by", ["uuid", "portable_data_hash"])
def test_a_stranger_cannot_mount_a_private_collection(admin, victim, secret, by):
    stranger = new_user(admin, "stranger")
    attack = reading({by: secret[by]}, priority=0)  # a preview: committed, judged, nothing runs
    assert status(lambda: submit(stranger, ["cat", "/in/secret.txt"], **attack)) == 422
    assert status(lambda: submit(victim, ["cat", "/in/secret.txt"], **attack)) == 200  # the owner may


def test_a_container_cannot_claim_a_victims_collection_as_its_output(admin, secret):
    attacker = new_user(admin, "attacker")
    request = submit(attacker, ["sleep", "60"])
    itself = container_client(admin, request["container_uuid"])
    claim = {"container": {"output": secret["portable_data_hash"]}}
    assert status(lambda: itself.request("PUT", f"containers/{request['container_uuid']}", body=claim)) == 422
    own = Collection(attacker)
    own.write("mine.txt", b"the attacker's own output\n")
    mine = {"container": {"output": own.save_new("mine")["portable_data_hash"]}}
    assert status(lambda: itself.request("PUT", f"containers/{request['container_uuid']}", body=mine)) == 200
    cancel(attacker, request)


def test_a_stranger_is_not_attached_to_a_running_container_reading_private_data(admin, victim, secret):
    command = ["sh", "-c", "cat /in/secret.txt; sleep 60"]
    running = submit(victim, command, **reading({"uuid": secret["uuid"]}))
    wait_container(victim, running["container_uuid"], ("Running",), timeout=60)
    stranger = new_user(admin, "stranger")
    same = reading({"portable_data_hash": secret["portable_data_hash"]})
    assert status(lambda: submit(stranger, command, **same)) == 422
    assert status(lambda: submit(stranger, command, **reading({"uuid": secret["uuid"]}))) == 422
    # once the victim shares the collection, the same request may join the running container
    victim.links.create({"link_class": "permission", "name": "can_read", "head_uuid": secret["uuid"],
                         "tail_uuid": stranger.users.current()["uuid"]})
    joined = submit(stranger, command, **same)
    assert joined["container_uuid"] == running["container_uuid"]
    cancel(stranger, joined)
    cancel(victim, running)


OUT = {"/out": {"kind": "tmp"}}
MALFORMED: dict[str, dict[str, Any]] = {
    "ram-lots": {"runtime_constraints": {"ram": "lots", "vcpus": 1}},
    "ram-negative": {"runtime_constraints": {"ram": -1, "vcpus": 1}},
    "vcpus-zero": {"runtime_constraints": {"ram": 64 << 20, "vcpus": 0}},
    "keep-cache-negative": {"runtime_constraints": {"ram": 64 << 20, "vcpus": 1, "keep_cache_ram": -1}},
    "max-run-time-x": {"scheduling_parameters": {"max_run_time": "x"}},
    "max-run-time-negative": {"scheduling_parameters": {"max_run_time": -1}},
    "container-count-max-negative": {"container_count_max": -1},
    "environment-not-string": {"environment": {"HOME": 5}},
    "uuid-5": {"mounts": {**OUT, "/in": {"kind": "collection", "uuid": 5}}},
    "pdh-malformed": {"mounts": {**OUT, "/in": {"kind": "collection", "portable_data_hash": "0123+x"}}},
    "target-dotdot": {"mounts": {**OUT, "../etc": {"kind": "tmp"}}},
    "target-inner-dotdot": {"mounts": {**OUT, "/out/../etc": {"kind": "tmp"}}},
    "unknown-kind": {"mounts": {**OUT, "/in": {"kind": "nfs"}}},
    "output-path-relative": {"output_path": "out", "cwd": "/out"},
    "output-path-unmounted": {"output_path": "/elsewhere"},
    "stdout-kind-tmp": {"mounts": {**OUT, "stdout": {"kind": "tmp"}}},
    "stdout-outside-output": {"mounts": {**OUT, "stdout": {"kind": "file", "path": "/etc/motd"}}},
    "name-nul": {"name": "a\0b"},  # PostgreSQL cannot store it: it was a 500 there
    "image-nul": {"container_image": "busybox\0:latest"},
}


@pytest.mark.parametrize("overrides", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_request_is_refused_with_422(admin, overrides):
    tenant = new_user(admin, "tenant")
    body = {**request_attrs(["true"]), "priority": 0, **overrides}
    with pytest.raises(ApiRequestError) as refused:
        tenant.request("POST", "container_requests", body={"container_request": body})
    assert refused.value.status == 422, refused.value


def test_a_percent_encoded_dot_dot_is_only_a_name(admin):
    tenant = new_user(admin, "tenant")
    body = {**request_attrs(["true"]), "priority": 0, "mounts": {**OUT, "/out/%2e%2e": {"kind": "tmp"}}}
    assert tenant.request("POST", "container_requests", body={"container_request": body})["state"] == "Committed"
