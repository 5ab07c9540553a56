"""Write-only fields cannot be read back through list filters or orders (an attacker review, break A).

alice commits a request with a secret mount in a project she shares read-only with bob. bob cannot
see the secret in any record, so he asks the list engine instead: `secret_mounts like '%"AKIA%'`,
one character at a time, or an order on it. Every filter or order naming a write-only or secret
column is a 422 naming it, the same whatever the row holds; and a finished container keeps no
secret mounts at all. In process, on the real API app."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from archipelago.backend.interface import Caller, ListParams
from archipelago.db.models import Container, ContainerRequest
from archipelago.errors import ArchipelagoError
from tests.support.asgi import AsgiTransport
from tests.support.backends import Site, single_cluster

BASE = "https://z1111.test/arvados/v1"
SECRET = "AKIAIOSFODNN7EXAMPLE"
REQUEST = {"command": ["true"], "container_image": None, "output_path": "/out", "cwd": "/out",
           "runtime_constraints": {"ram": 64 << 20, "vcpus": 1}, "priority": 1, "state": "Committed",
           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}}
OUTPUT = ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:result.txt\n"
# (resource, column): what no filter or order may name
UNFILTERABLE = [("containers", "secret_mounts"), ("containers", "runtime_token"), ("containers", "auth_uuid"),
                ("containers", "reuse_key"), ("container_requests", "secret_mounts"),
                ("container_requests", "runtime_token"), ("api_client_authorizations", "api_token")]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("api-secrets")))


def get(site: Site, caller: Caller, path: str, **params: Any) -> tuple[int, dict[str, Any]]:
    query = urlencode({k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()})
    response = AsgiTransport(site.apps["self"]).request(
        "GET", f"{BASE}/{path}?{query}", None, {"Authorization": f"Bearer {caller.token}"})
    return response.status, json.loads(response.data or b"{}")


def secret_request(site: Site, command: str, secret: str = SECRET) -> tuple[Caller, Caller, dict[str, Any]]:
    """alice's committed request (with a secret mount) in a project bob may read."""
    alice, bob = site.new_user("alice"), site.new_user("bob")
    project = site.backend.create(alice, "groups", {"name": f"shared {command}", "group_class": "project"})
    site.backend.create(alice, "links", {"link_class": "permission", "name": "can_read",
                                         "tail_uuid": bob.user_uuid, "head_uuid": project["uuid"]})
    request = site.backend.create(alice, "container_requests", {
        **REQUEST, "command": ["echo", command], "owner_uuid": project["uuid"],
        "secret_mounts": {"/secret/key": {"kind": "text", "content": secret}}})
    return alice, bob, request


def finish(site: Site, container_uuid: str, state: str = "Complete") -> None:
    """What the dispatcher and the executor do: lock, run, save an output and end."""
    backend, admin = site.backend, site.admin
    backend.act(admin, "containers", container_uuid, "lock", "POST", {})
    backend.update(admin, "containers", container_uuid, {"state": "Running"})
    if state == "Cancelled":
        backend.update(admin, "containers", container_uuid, {"state": "Cancelled"})
        return
    runner = backend.get(admin, "containers", container_uuid)["runtime_user_uuid"]
    pdh = backend.create(admin, "collections", {"name": f"output of {container_uuid}", "owner_uuid": runner,
                                                "manifest_text": OUTPUT})["portable_data_hash"]
    backend.update(admin, "containers", container_uuid,
                   {"state": "Complete", "exit_code": 0, "output": pdh, "log": pdh})


def stored(site: Site, model: Any, uuid: str) -> Any:
    with site.local.sessions() as session:
        return session.scalar(select(model).where(model.uuid == uuid))


def refused(status: int, body: dict[str, Any], column: str) -> None:
    assert status == 422, body
    assert column in body["errors"][0] and "Invalid attribute" in body["errors"][0], body


def test_bob_cannot_guess_a_secret_mount_through_a_like_filter(site):
    _alice, bob, request = secret_request(site, "guess by like")
    cu = request["container_uuid"]
    assert get(site, bob, f"containers/{cu}")[0] == 200  # he may read the container, not its secrets
    answers = [get(site, bob, "containers", filters=[["uuid", "=", cu], ["secret_mounts", "like", pattern]])
               for pattern in (f'%"content":%"{SECRET[:4]}%', '%"content":%"ZZZZ%')]
    for status, body in answers:
        refused(status, body, "secret_mounts")
    assert answers[0][1]["errors"] == answers[1][1]["errors"]  # right guess or wrong: the same answer
    for status, body in (get(site, bob, "container_requests", filters=[["secret_mounts", "like", f"%{SECRET}%"]]),
                         get(site, bob, "container_requests", where={"secret_mounts": {}})):
        refused(status, body, "secret_mounts")


@pytest.mark.parametrize(("resource", "column"), UNFILTERABLE)
def test_no_filter_or_order_names_a_secret_column(site, resource, column):
    _alice, bob, _request = secret_request(site, f"{resource} {column}")
    for caller in (bob, site.admin):  # refused to admins too: one rule, and no caller's query leaks
        for operator, operand in (("like", "%A%"), ("=", "x"), (">=", "A"), ("in", ["x"]), ("is_a", "x"),
                                  ("exists", True)):
            refused(*get(site, caller, resource, filters=[[column, operator, operand]]), column)
        refused(*get(site, caller, resource, filters=[[["uuid", column], "like", "%A%"]]), column)
        refused(*get(site, caller, resource, filters=[[f"{column}.key", "=", "x"]]), column)
        for order in (column, f"{column} desc", f"{resource}.{column} asc", f"{column}.key"):
            refused(*get(site, caller, resource, order=order), column)


def test_a_search_of_any_attribute_does_not_look_into_secret_columns(site):
    _alice, bob, request = secret_request(site, "search any")
    container = stored(site, Container, request["container_uuid"])
    for caller in (bob, site.admin):
        for value in (container.reuse_key, container.auth_uuid):
            status, body = get(site, caller, "containers", filters=[["uuid", "=", container.uuid],
                                                                    ["any", "like", f"%{value[-8:]}%"]])
            assert status == 200 and body["items"] == [], body


def test_listing_a_project_refuses_the_same_filters(site):
    _alice, bob, request = secret_request(site, "contents")
    status, body = get(site, bob, f"groups/{request['owner_uuid']}/contents",
                       filters=[["secret_mounts", "like", f"%{SECRET}%"]])
    refused(status, body, "secret_mounts")
    refused(*get(site, bob, f"groups/{request['owner_uuid']}/contents", order="runtime_token desc"), "runtime_token")


def test_selecting_a_write_only_field_never_returns_it(site):
    _alice, bob, request = secret_request(site, "select")
    for resource, uuid in (("containers", request["container_uuid"]), ("container_requests", request["uuid"])):
        status, body = get(site, bob, resource, filters=[["uuid", "=", uuid]], select=["uuid", "secret_mounts"])
        assert status >= 400 and SECRET not in json.dumps(body), body
        status, body = get(site, bob, f"{resource}/{uuid}", select=["uuid", "secret_mounts"])
        assert status >= 400 and SECRET not in json.dumps(body), body


def test_a_finished_container_keeps_no_secret_mounts_and_is_still_reused(site):
    alice, _bob, request = secret_request(site, "scrubbed")
    cu = request["container_uuid"]
    assert stored(site, Container, cu).secret_mounts  # the executor reads them while it runs
    finish(site, cu)
    assert stored(site, Container, cu).secret_mounts == {}
    assert stored(site, ContainerRequest, request["uuid"]).secret_mounts == {}
    # its reuse_key still holds their md5: the same secret reuses it, another one does not
    again = site.backend.create(alice, "container_requests", {
        **REQUEST, "command": ["echo", "scrubbed"], "secret_mounts": {"/secret/key": {"kind": "text",
                                                                                    "content": SECRET}}})
    assert again["container_uuid"] == cu and again["state"] == "Final"
    other = site.backend.create(alice, "container_requests", {
        **REQUEST, "command": ["echo", "scrubbed"], "secret_mounts": {"/secret/key": {"kind": "text",
                                                                                    "content": "other"}}})
    assert other["container_uuid"] != cu


def test_a_retried_container_gets_the_secret_and_the_cancelled_one_keeps_none(site):
    _alice, _bob, request = secret_request(site, "retried")
    first = request["container_uuid"]
    finish(site, first, "Cancelled")  # a system failure: run again for the request
    successor = stored(site, ContainerRequest, request["uuid"]).container_uuid
    assert successor != first
    assert stored(site, Container, first).secret_mounts == {}
    assert stored(site, Container, successor).secret_mounts["/secret/key"]["content"] == SECRET


def test_a_reader_outside_the_cluster_cannot_read_a_restricted_manifest_back_through_a_filter(site):
    """Residency: a reader outside (a request a peer forwarded) sees a restricted collection's
    metadata but never its manifest, so no filter or order may name the manifest either."""
    alice = site.new_user("alice")
    restricted = site.backend.create(alice, "collections", {
        "name": "stays here", "manifest_text": ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:patient-0042.csv\n"})
    site.backend.update(site.admin, "collections", restricted["uuid"], {"residency": "cluster"})
    outside = dataclasses.replace(alice, via="z2222")
    listed = site.backend.list(outside, "collections", ListParams(filters=[["uuid", "=", restricted["uuid"]]]))
    assert listed["items"] and "manifest_text" not in listed["items"][0]  # as before: metadata only
    for params in (ListParams(filters=[["uuid", "=", restricted["uuid"]], ["manifest_text", "like", "%patient-0%"]]),
                   ListParams(filters=[["uuid", "=", restricted["uuid"]]], order=["manifest_text asc"])):
        with pytest.raises(ArchipelagoError) as info:
            site.backend.list(outside, "collections", params)
        assert info.value.status == 422 and "manifest_text" in str(info.value)
    at_home = site.backend.list(alice, "collections", ListParams(
        filters=[["uuid", "=", restricted["uuid"]], ["manifest_text", "like", "%patient-0%"]]))
    assert [c["uuid"] for c in at_home["items"]] == [restricted["uuid"]]  # its own cluster's readers still may
