"""Who else may read a collection, as a reader of it sees it, on a real cluster (SQLite and
PostgreSQL). Alice shares her collection with Bob (can_read) and with Carol (can_write). Arvados'
permission model: "can_read does not allow a reader to see any permission grants on the object
except the object's owner_uuid and the reader's own permissions" — neither through the API nor on
the web UI's sharing panel. Alice, who manages it, sees both."""

from __future__ import annotations

from typing import Any

import pytest

from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user
from tests.support.web import WebClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shared(cluster: Any) -> dict[str, Any]:
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice, bob, carol = (new_user(admin, name) for name in ("alice", "bob", "carol"))
    collection = Collection(alice)
    collection.write("a.txt", b"a\n")
    record = collection.save_new("shared twice")
    uuids = {name: client.users.current()["uuid"] for name, client in (("bob", bob), ("carol", carol))}
    for name, level in (("bob", "can_read"), ("carol", "can_write")):
        alice.links.create({"link_class": "permission", "name": level, "tail_uuid": uuids[name],
                            "head_uuid": record["uuid"]})
    return {"alice": alice, "bob": bob, "uuid": record["uuid"], "users": uuids, "cluster": cluster}


def grants(client: ApiClient, uuid: str) -> set[str]:
    found = client.links.list(filters=[["head_uuid", "=", uuid], ["link_class", "=", "permission"]])["items"]
    return {link["tail_uuid"] for link in found}


def test_a_reader_sees_only_her_own_grant(shared: dict) -> None:
    assert grants(shared["alice"], shared["uuid"]) == set(shared["users"].values())  # the manager: both
    assert grants(shared["bob"], shared["uuid"]) == {shared["users"]["bob"]}


def test_the_web_uis_sharing_panel_does_not_name_the_others_to_a_reader(shared: dict) -> None:
    web = WebClient(shared["cluster"].api_url)
    assert web.login(shared["bob"].token).status == 303
    page = web.get(f"/collections/{shared['uuid']}")
    assert page.status == 200 and shared["users"]["carol"] not in page.text and "carol" not in page.text
