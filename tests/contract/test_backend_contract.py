"""One contract, every Backend: the local engine on SQLite, and the federation router of a home
cluster whose peer is another in-process cluster reached through its real API app (salted tokens,
remote validation, forwarding, +R rewriting). Each case runs for objects held at home and, through
the router, for objects held by the peer. In process: the whole module takes seconds."""

from __future__ import annotations

import hashlib

import pytest

from archipelago.backend.interface import ListParams
from archipelago.errors import ArchipelagoError
from tests.support.backends import Site, federation, single_cluster

EMPTY_FILE = ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:empty.txt\n"
EMPTY_PDH = hashlib.md5(EMPTY_FILE.encode()).hexdigest() + f"+{len(EMPTY_FILE)}"


# (backend, where its objects live): the local engine; the router at home; the router reaching its peer
CASES = [("local", "z1111"), ("federated", "z1111"), ("federated", "z2222")]


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> dict[str, dict[str, Site]]:
    return {"local": {"z1111": single_cluster(tmp_path_factory.mktemp("local"))},
            "federated": federation(tmp_path_factory.mktemp("federated"))}


@pytest.fixture(params=CASES, ids=[f"{kind}-{where}" for kind, where in CASES])
def case(request, sites) -> tuple[Site, str]:
    kind, where = request.param
    return sites[kind]["z1111"], where


@pytest.fixture
def home(case) -> Site:
    return case[0]


@pytest.fixture
def where(case) -> str:
    """The cluster that holds the objects a case makes (z2222: through the home router)."""
    return case[1]


def status_of(call, *args, **kwargs) -> int:
    with pytest.raises(ArchipelagoError) as info:
        call(*args, **kwargs)
    return info.value.status


def test_a_collection_is_created_read_updated_listed_and_trashed_where_asked(home, where):
    alice = home.new_user("alice-crud")
    backend = home.backend
    made = backend.create(alice, "collections", {"name": "c", "manifest_text": EMPTY_FILE}, cluster_id=where)
    uuid = made["uuid"]
    assert uuid.startswith(where + "-4zz18-") and made["portable_data_hash"] == EMPTY_PDH
    got = backend.get(alice, "collections", uuid)
    assert (got["name"], got["file_count"], got["kind"]) == ("c", 1, "arvados#collection")
    assert backend.update(alice, "collections", uuid, {"name": "renamed"})["name"] == "renamed"
    listed = backend.list(alice, "collections", ListParams(filters=[["uuid", "in", [uuid]]]))
    assert [item["name"] for item in listed["items"]] == ["renamed"]
    backend.delete(alice, "collections", uuid)
    listed = backend.list(alice, "collections", ListParams(filters=[["uuid", "=", uuid]]))
    assert listed["items"] == []
    assert status_of(lambda: backend.get(alice, "collections", uuid)) == 404  # trashed: gone unless asked
    assert backend.get(alice, "collections", uuid, include_trash=True)["is_trashed"] is True
    listed = backend.list(alice, "collections", ListParams(filters=[["uuid", "=", uuid]], include_trash=True))
    assert [item["uuid"] for item in listed["items"]] == [uuid]
    backend.untrash(alice, "collections", uuid)
    assert backend.list(alice, "collections", ListParams(filters=[["uuid", "=", uuid]]))["items"]


def test_a_collection_is_found_by_its_content_hash(home, where):
    alice = home.new_user("alice-pdh")
    home.backend.create(alice, "collections", {"name": "by-content", "manifest_text": EMPTY_FILE}, cluster_id=where)
    found = home.backend.get(alice, "collections", EMPTY_PDH)
    assert found["uuid"] == EMPTY_PDH and found["portable_data_hash"] == EMPTY_PDH


def test_others_see_nothing_until_it_is_shared(home, where):
    alice, bob = home.new_user("alice-share"), home.new_user("bob-share")
    backend = home.backend
    uuid = backend.create(alice, "collections", {"name": "private", "manifest_text": ""}, cluster_id=where)["uuid"]
    assert status_of(backend.get, bob, "collections", uuid) == 404
    assert status_of(backend.update, bob, "collections", uuid, {"name": "mine now"}) == 404
    backend.create(alice, "links", {"link_class": "permission", "name": "can_read", "tail_uuid": bob.user_uuid,
                                    "head_uuid": uuid}, cluster_id=where)
    assert backend.get(bob, "collections", uuid)["name"] == "private"
    assert status_of(backend.update, bob, "collections", uuid, {"name": "mine now"}) == 403


def test_names_are_unique_per_owner_unless_asked_to_make_them_so(home, where):
    alice = home.new_user("alice-names")
    backend = home.backend
    backend.create(alice, "groups", {"name": "runs", "group_class": "project"}, cluster_id=where)
    assert status_of(backend.create, alice, "groups", {"name": "runs", "group_class": "project"},
                     cluster_id=where) == 422
    second = backend.create(alice, "groups", {"name": "runs", "group_class": "project"}, ensure_unique_name=True,
                            cluster_id=where)
    assert second["name"] == "runs (2)"


def test_bad_attributes_are_refused_with_the_right_status(home, where):
    alice = home.new_user("alice-bad")
    backend = home.backend
    assert status_of(backend.create, alice, "collections", {"colour": "red"}, cluster_id=where) == 422
    assert status_of(backend.create, alice, "collections", {"residency": "cluster"}, cluster_id=where) == 403
    assert status_of(backend.create, alice, "collections", {"manifest_text": "not a manifest"},
                     cluster_id=where) == 422
    assert status_of(backend.create, alice, "groups", {"name": "g", "group_class": "tribe"}, cluster_id=where) == 422
    assert status_of(backend.get, alice, "collections", f"{where}-4zz18-000000000000000") == 404
    assert status_of(backend.get, alice, "no_such_things", f"{where}-4zz18-000000000000000") == 404


def test_only_admins_make_users_and_each_user_is_themselves(home):
    alice = home.new_user("alice-users")
    assert home.backend.user_current(alice)["uuid"] == alice.user_uuid
    assert home.backend.token_current(alice)["uuid"] == alice.authorization_uuid
    assert status_of(home.backend.create, alice, "users", {"username": "mallory"}) == 403


def test_a_revoked_token_stops_working(home):
    alice = home.new_user("alice-revoke")
    home.backend.delete(alice, "api_client_authorizations", alice.authorization_uuid)
    assert status_of(home.backend.authenticate, alice.token) == 401


def test_the_sdk_speaks_to_the_api_app_in_process(home, where):
    """The same through the HTTP layer: the SDK, the API app, the router and (for z2222) the peer."""
    alice = home.new_user("alice-sdk")
    client = home.client(alice)
    made = client.request("POST", "collections", {"cluster_id": where}, {"collection": {"name": "via sdk"}})
    assert client.collections.get(made["uuid"])["name"] == "via sdk"
    assert client.users.current()["uuid"] == alice.user_uuid
