"""Residency through DRS and the file-download endpoint, on a real two-cluster federation: a
collection under `residency: cluster` at z1111, shared with a user of z2222, is refused (403 naming
the policy) to that user however they ask — through their own cluster (DRS by PDH, which looks on
the peers; download by UUID or PDH) or visiting z1111 with their salted token — while a collection
shared the same way without the policy is read through the very same paths."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest

from archipelago.formats.tokens import salt_token
from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user, running_federation
from tests.support.wes import call

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_federation(tmp_path_factory.mktemp("residency"), 2) as federation:
        yield federation


@pytest.fixture(scope="module")
def shared(federation: Any) -> dict[str, Any]:
    """alice's two collections at z1111, one restricted, both readable by bob of z2222."""
    home, peer = federation["z1111"], federation["z2222"]
    alice, bob = new_user(home, "alice"), new_user(peer, "bob")
    bob_uuid = bob.users.current()["uuid"]
    ApiClient(home.base, salt_token(bob.token, "z1111"), insecure=True).users.current()  # bob known at z1111
    records = {}
    for name, policy in (("restricted", "cluster"), ("open", None)):
        project = home.groups.create({"name": f"{name}-{bob_uuid[-6:]}", "group_class": "project",
                                      "owner_uuid": alice.users.current()["uuid"], "residency": policy})["uuid"]
        alice.links.create({"link_class": "permission", "name": "can_read", "tail_uuid": bob_uuid,
                            "head_uuid": project})
        collection = Collection(alice)
        collection.write("cohort.csv", f"{name} rows\n".encode())
        records[name] = collection.save_new(name, owner_uuid=project)
    return {"alice": alice, "bob": bob, "home": home, "peer": peer, **records}


def reads(shared: dict[str, Any], record: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, url, token) of every way bob asks for the file."""
    bob, home, peer = shared["bob"], shared["home"], shared["peer"]
    pdh, visiting = record["portable_data_hash"], salt_token(bob.token, "z1111")
    drs_file = quote(f"{pdh}/cohort.csv", safe="")
    return [
        ("DRS bundle at z2222", f"{peer.base}/ga4gh/drs/v1/objects/{quote(pdh, safe='')}", bob.token),
        ("DRS file at z2222", f"{peer.base}/ga4gh/drs/v1/objects/{drs_file}", bob.token),
        ("DRS access at z2222", f"{peer.base}/ga4gh/drs/v1/objects/{drs_file}/access/https", bob.token),
        ("download by UUID at z2222", f"{peer.base}/arvados/v1/collections/{record['uuid']}/files/cohort.csv",
         bob.token),
        ("download by PDH at z2222", f"{peer.base}/arvados/v1/collections/{pdh}/files/cohort.csv", bob.token),
        ("DRS file visiting z1111", f"{home.base}/ga4gh/drs/v1/objects/{drs_file}", visiting),
        ("download visiting z1111", f"{home.base}/arvados/v1/collections/{record['uuid']}/files/cohort.csv",
         visiting),
    ]


def test_an_open_collection_is_read_from_outside_every_way(shared: dict[str, Any]) -> None:
    for what, url, token in reads(shared, shared["open"]):
        answer = call("GET", url, token)
        assert answer.status == 200, (what, answer.data)
        if "download" in what:
            assert answer.data == b"open rows\n"


def test_a_restricted_collection_is_refused_to_a_reader_outside_every_way(shared: dict[str, Any]) -> None:
    for what, url, token in reads(shared, shared["restricted"]):
        answer = call("GET", url, token)
        assert answer.status == 403, (what, answer.status, answer.data)
        assert b"residency policy 'cluster'" in answer.data and b"restricted rows" not in answer.data, what


def test_inside_its_cluster_the_owner_reads_it(shared: dict[str, Any]) -> None:
    alice, record = shared["alice"], shared["restricted"]
    url = f"{alice.base}/arvados/v1/collections/{record['portable_data_hash']}/files/cohort.csv"
    assert call("GET", url, alice.token).data == b"restricted rows\n"
