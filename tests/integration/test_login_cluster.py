"""A LoginCluster federation: one cluster issues every user and token, the same token works everywhere."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, text

from archipelago.config import load_config
from archipelago.run.cluster import CONFIG_NAME
from archipelago.sdk import ApiClient, ApiRequestError, Collection
from tests.support.clusters import REFRESH, new_user, start_federation

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def login_federation(tmp_path_factory):
    members, processes = start_federation(tmp_path_factory.mktemp("login"), 2, login_cluster=True)
    yield {m.cluster_id: (ApiClient(m.api_url, m.admin_token, insecure=True), m) for m in members}
    for process in processes:
        process.stop()


def test_the_login_clusters_token_works_everywhere_and_the_satellite_keeps_only_its_salted_form(login_federation):
    (login, _), (satellite, member) = login_federation["z1111"], login_federation["z2222"]
    assert satellite.config()["Login"]["LoginCluster"] == "z1111"
    alice = new_user(login, "alice")
    at_satellite = ApiClient(satellite.base, alice.token, insecure=True)  # the same, unsalted token
    me = at_satellite.users.current()
    assert me["uuid"] == alice.users.current()["uuid"] and me["is_admin"] is False
    token_uuid, secret = alice.token.split("/")[1:3]
    database = create_engine(load_config(member.directory / CONFIG_NAME).database_url)
    with database.connect() as connection:
        stored = connection.execute(text("SELECT api_token FROM api_client_authorizations WHERE uuid = :u"),
                                    {"u": token_uuid}).scalar_one()
    assert stored != secret and len(stored) == 40  # never the secret itself


def test_users_and_tokens_come_from_the_login_cluster(login_federation):
    (login, _), (satellite, _) = login_federation["z1111"], login_federation["z2222"]
    with pytest.raises(ApiRequestError) as info:  # asked of the login cluster, where the satellite's admin is none
        satellite.users.create({"email": "x@example.org", "username": "x-local"})
    assert info.value.status == 403 and info.value.message.startswith("cluster z1111:")
    with pytest.raises(ApiRequestError) as info:  # and the satellite's own database never makes one
        satellite.request("POST", "users", params={"forwarded_for": "z1111"}, body={"user": {"username": "y"}})
    assert info.value.status == 422 and "login cluster z1111" in info.value.message
    alice = new_user(login, "alice")
    at_satellite = ApiClient(satellite.base, alice.token, insecure=True)
    row = at_satellite.api_client_authorizations.create({})  # forwarded to the login cluster
    assert row["uuid"].startswith("z1111-gj3su-")
    fresh = f"v2/{row['uuid']}/{row['api_token']}"
    for cluster in (login, satellite):
        assert ApiClient(cluster.base, fresh, insecure=True).users.current()["uuid"] == row["owner_uuid"]


def test_admins_of_the_login_cluster_are_admins_everywhere(login_federation):
    (login, _), (satellite, _) = login_federation["z1111"], login_federation["z2222"]
    carol = new_user(login, "carol")
    login.users.update(carol.users.current()["uuid"], {"is_admin": True})
    carol_at_satellite = ApiClient(satellite.base, carol.token, insecure=True)
    assert carol_at_satellite.users.current()["is_admin"] is True
    made = carol_at_satellite.users.create({"email": "dave@example.org", "username": f"dave-{time.time_ns()}"})
    assert made["uuid"].startswith("z1111-tpzed-")  # made by the login cluster


def test_home_data_reads_through_the_satellite_and_revocation_reaches_it(login_federation):
    (login, _), (satellite, _) = login_federation["z1111"], login_federation["z2222"]
    alice = new_user(login, "alice")
    collection = Collection(alice)
    collection.write("notes.txt", b"written at the login cluster\n")
    record = collection.save_new("notes")
    at_satellite = ApiClient(satellite.base, alice.token, insecure=True)
    # forwarded home with the token that cluster issued; the blocks come through the satellite's keepstore
    assert Collection(at_satellite, record["uuid"]).read("notes.txt") == b"written at the login cluster\n"
    login.api_client_authorizations.delete(alice.token.split("/")[1])
    deadline = time.monotonic() + REFRESH + 15
    while time.monotonic() < deadline:
        try:
            at_satellite.users.current()
        except ApiRequestError as exc:
            assert exc.status == 401
            break
        time.sleep(0.5)
    else:
        pytest.fail("a token revoked at the login cluster still works at the satellite")
