"""The permission matrix: users x objects x actions, over the real API (SQLite and PostgreSQL).

Unreadable -> 404 (its existence is not disclosed); readable but not writable -> 403.
"""

from __future__ import annotations

import secrets

import pytest

from archipelago.sdk import ApiClient, ApiRequestError
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(cluster):
    """owner has: a top project P with sub-project S holding collection C_S, and a loose collection C.
    reader is shared P read-only; writer is shared S can_write; a role group R (member: member) gets
    can_read on C; stranger gets nothing; admin is the cluster admin."""
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    users = {name: new_user(admin, name) for name in ("owner", "reader", "writer", "member", "stranger")}
    uuid = {name: client.users.current()["uuid"] for name, client in users.items()}
    owner = users["owner"]
    p = owner.groups.create({"name": f"P-{secrets.token_hex(3)}", "group_class": "project"})["uuid"]
    s = owner.groups.create({"name": "S", "group_class": "project", "owner_uuid": p})["uuid"]
    c_s = owner.collections.create({"name": "in-S", "manifest_text": "", "owner_uuid": s})["uuid"]
    c = owner.collections.create({"name": "loose", "manifest_text": ""})["uuid"]
    role = admin.groups.create({"name": f"R-{secrets.token_hex(3)}", "group_class": "role"})["uuid"]
    admin.links.create({"link_class": "permission", "name": "can_write", "tail_uuid": uuid["member"],
                        "head_uuid": role})
    owner.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": uuid["reader"], "head_uuid": p})
    owner.links.create({"link_class": "permission", "name": "can_write", "tail_uuid": uuid["writer"], "head_uuid": s})
    owner.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": role, "head_uuid": c})
    return {"clients": {**users, "admin": admin}, "objects": {"P": p, "S": s, "C_S": c_s, "C": c}}


# expected outcome per (user, object): "manage", "write", "read" or "none"
MATRIX = {
    "owner": {"P": "manage", "S": "manage", "C_S": "manage", "C": "manage"},
    "admin": {"P": "manage", "S": "manage", "C_S": "manage", "C": "manage"},
    "reader": {"P": "read", "S": "read", "C_S": "read", "C": "none"},
    "writer": {"P": "none", "S": "write", "C_S": "write", "C": "none"},
    "member": {"P": "none", "S": "none", "C_S": "none", "C": "read"},
    "stranger": {"P": "none", "S": "none", "C_S": "none", "C": "none"},
}
RESOURCE = {"P": "groups", "S": "groups", "C_S": "collections", "C": "collections"}
CASES = [(user, obj) for user in MATRIX for obj in MATRIX[user]]


def status_of(call) -> int:
    try:
        call()
        return 200
    except ApiRequestError as exc:
        return exc.status


@pytest.mark.parametrize(("user", "obj"), CASES, ids=[f"{u}-{o}" for u, o in CASES])
def test_matrix(world, user, obj):
    client = world["clients"][user]
    uuid = world["objects"][obj]
    resource = getattr(client, RESOURCE[obj])
    expected = MATRIX[user][obj]

    read = status_of(lambda: resource.get(uuid))
    listed = any(item["uuid"] == uuid for item in resource.list([["uuid", "=", uuid]])["items"])
    write = status_of(lambda: resource.update(uuid, {"description": f"touched by {user}"}))
    if expected == "none":
        assert (read, listed, write) == (404, False, 404)
    elif expected == "read":
        assert (read, listed, write) == (200, True, 403)
    else:
        assert (read, listed, write) == (200, True, 200)
    # sharing needs manage (shared with an empty role, so the matrix itself does not change)
    target = world["clients"]["admin"].groups.create(
        {"name": f"empty-{secrets.token_hex(4)}", "group_class": "role"})["uuid"]
    share = status_of(lambda: client.links.create(
        {"link_class": "permission", "name": "can_read", "tail_uuid": target, "head_uuid": uuid}))
    assert (share == 200) == (expected == "manage")


def test_nobody_but_the_owner_and_admins_see_tokens(world):
    owner, stranger = world["clients"]["owner"], world["clients"]["stranger"]
    mine = owner.api_client_authorizations.current()["uuid"]
    assert status_of(lambda: stranger.api_client_authorizations.get(mine)) == 404
    assert mine not in [t["uuid"] for t in stranger.api_client_authorizations.list()["items"]]


def test_only_admins_create_users(world):
    assert status_of(lambda: world["clients"]["owner"].users.create({"email": "x@y"})) == 403
    assert status_of(lambda: world["clients"]["owner"].users.update(
        world["clients"]["owner"].users.current()["uuid"], {"is_admin": True})) == 403


def test_writing_into_someone_elses_project_needs_write(world):
    p = world["objects"]["P"]
    assert status_of(lambda: world["clients"]["reader"].collections.create(
        {"name": "x", "manifest_text": "", "owner_uuid": p})) == 403
    s = world["objects"]["S"]
    assert status_of(lambda: world["clients"]["writer"].collections.create(
        {"name": f"w-{secrets.token_hex(3)}", "manifest_text": "", "owner_uuid": s})) == 200
