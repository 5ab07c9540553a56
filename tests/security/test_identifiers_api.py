"""Identifiers on collections and projects, attacked in process through the real API app: an
identifier is as readable as the object it names, changed only by its writers, and a stranger
learns nothing of a private collection's identifiers, not even by filtering for a guess."""

from __future__ import annotations

import json

import pytest

from archipelago.rpc import ApiRequestError
from tests.support.backends import single_cluster

EMPTY = ". d41d8cd98f00b204e9800998ecf8427e+0 0:0:e.txt\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return single_cluster(tmp_path_factory.mktemp("ids"))


def status(call, *args):
    with pytest.raises(ApiRequestError) as info:
        call(*args)
    return info.value.status, info.value.message


def private_collection(site, owner):
    client = site.client(owner)
    return client, client.collections.create({"name": "cohort", "manifest_text": EMPTY})


def test_an_owner_adds_lists_and_removes_identifiers_in_any_spelling(site):
    alice, collection = private_collection(site, site.new_user("alice"))
    made = alice.request("POST", "identifiers", body={"identifier": {
        "head_uuid": collection["uuid"], "identifier": "https://doi.org/10.5555/Cohort-A"}})
    assert (made["identifier"], made["scheme"], made["published"]) == ("doi:10.5555/cohort-a", "doi", False)
    assert made["uuid"].startswith("z1111-df4ad-") and made["owner_uuid"] == collection["owner_uuid"]
    found = alice.request("GET", "identifiers", {"filters": '[["identifier","=","doi:10.5555/cohort-a"]]'})
    assert [i["head_uuid"] for i in found["items"]] == [collection["uuid"]]
    assert status(alice.request, "POST", "identifiers", None, {"identifier": {
        "head_uuid": collection["uuid"], "identifier": "doi:10.5555/COHORT-A"}})[0] == 422  # the same one, again
    alice.request("DELETE", f"identifiers/{made['uuid']}")
    assert alice.request("GET", "identifiers", {"filters": json.dumps([["head_uuid", "=", collection["uuid"]]])})[
        "items"] == []


def test_a_malformed_identifier_is_a_422_naming_the_rule(site):
    alice, collection = private_collection(site, site.new_user("alice"))
    code, message = status(alice.request, "POST", "identifiers", None, {"identifier": {
        "head_uuid": collection["uuid"], "identifier": "ega.dataset:XYZ"}})
    assert code == 422 and r"must match ^EGAD\d{11}$" in message


def test_a_stranger_with_a_made_up_token_gets_401(site):
    from archipelago.sdk.client import ApiClient
    from tests.support.asgi import AsgiTransport

    stranger = ApiClient("https://z1111.test", "v2/z1111-gj3su-000000000000000/madeup",
                         transport=AsgiTransport(site.apps["self"]))
    assert status(stranger.request, "GET", "identifiers")[0] == 401
    assert status(stranger.request, "POST", "identifiers", None, {"identifier": {"identifier": "doi:10.1/x"}})[0] == 401


def test_another_tenant_neither_sees_nor_guesses_nor_adds_identifiers_of_a_private_collection(site):
    alice, collection = private_collection(site, site.new_user("alice"))
    alice.request("POST", "identifiers", body={"identifier": {
        "head_uuid": collection["uuid"], "identifier": "doi:10.5555/secret-cohort", "published": True}})
    mallory = site.client(site.new_user("mallory"))
    assert mallory.request("GET", "identifiers")["items"] == []
    guess = mallory.request("GET", "identifiers", {"filters": '[["identifier","=","doi:10.5555/secret-cohort"]]'})
    assert guess["items"] == [] and guess["items_available"] == 0
    code, message = status(mallory.request, "POST", "identifiers", None, {"identifier": {
        "head_uuid": collection["uuid"], "identifier": "doi:10.5555/mine"}})
    assert code == 422 and "no such collection or project" in message  # as if it did not exist
    own = alice.request("GET", "identifiers", {"filters": json.dumps([["head_uuid", "=", collection["uuid"]]])})
    own = own["items"]
    assert status(mallory.request, "DELETE", f"identifiers/{own[0]['uuid']}")[0] == 404
    assert status(mallory.request, "PUT", f"identifiers/{own[0]['uuid']}", None,
                  {"identifier": {"published": False}})[0] == 404


def test_a_reader_sees_identifiers_but_only_a_writer_adds_them(site):
    alice, collection = private_collection(site, site.new_user("alice"))
    bob_caller = site.new_user("bob")
    bob = site.client(bob_caller)
    alice.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": bob_caller.user_uuid,
                        "head_uuid": collection["uuid"]})
    alice.request("POST", "identifiers", body={"identifier": {"head_uuid": collection["uuid"],
                                                              "identifier": "doi:10.5555/shared"}})
    assert [i["identifier"] for i in bob.request("GET", "identifiers")["items"]] == ["doi:10.5555/shared"]
    code, message = status(bob.request, "POST", "identifiers", None, {"identifier": {
        "head_uuid": collection["uuid"], "identifier": "doi:10.5555/bobs"}})
    assert code == 422 and "not change it" in message
