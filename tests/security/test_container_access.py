"""What a container request may read, judged as the user who commits it (issue 17, defects 3 and 4),
in process: every rule on its own, fast. tests/security/test_container_requests.py plays the same
attacks against a real cluster with containers that run.

A tenant must not reach another tenant's collection through a mount (by UUID or PDH), an image,
a container's claimed output, or by joining an equal container someone else started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from archipelago.backend.interface import Caller
from archipelago.db.models import ContainerRequest
from archipelago.errors import ArchipelagoError
from archipelago.ids import new_uuid
from tests.support.backends import Site, federation, single_cluster

EMPTY = "d41d8cd98f00b204e9800998ecf8427e+0"
ABSENT = "ffffffffffffffffffffffffffffffff+3"  # content no collection anywhere here has
REQUEST = {"command": ["cat", "/in/secret.txt"], "container_image": None, "output_path": "/out", "cwd": "/out",
           "runtime_constraints": {"ram": 64 << 20, "vcpus": 1}, "priority": 1, "state": "Committed",
           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("access")))


@pytest.fixture(scope="module")
def federated(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """z1111 of a federation with z2222: content it does not hold may be a peer's."""
    return federation(Path(tmp_path_factory.mktemp("federated")))["z1111"]


def private_collection(site: Site, owner: Caller, text: str) -> dict[str, Any]:
    """A collection only its owner can read, with content of its own (a file named for the test)."""
    name = text.replace(" ", "_")
    return site.backend.create(owner, "collections", {
        "name": f"private {text}", "manifest_text": f". d41d8cd98f00b204e9800998ecf8427e+0 0:0:{name}.txt\n"})


def mounting(source: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    return {**REQUEST, "mounts": {**REQUEST["mounts"], "/in": {"kind": "collection", **source}}, **overrides}


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(ArchipelagoError) as info:
        call(*args)
    assert info.value.status == 422, info.value
    return str(info.value)


def share(site: Site, owner: Caller, reader: Caller, uuid: str) -> None:
    site.backend.create(owner, "links", {"link_class": "permission", "name": "can_read",
                                         "tail_uuid": reader.user_uuid, "head_uuid": uuid})


# ---------------------------------------------------------------- mounts
def test_a_stranger_cannot_mount_a_private_collection_by_uuid_and_learns_nothing_of_it(site):
    victim, stranger = site.new_user("victim"), site.new_user("stranger")
    secret = private_collection(site, victim, "by uuid")
    told = refusal(site.backend.create, stranger, "container_requests", mounting({"uuid": secret["uuid"]}))
    missing = new_uuid("z1111", "4zz18")
    told_missing = refusal(site.backend.create, stranger, "container_requests", mounting({"uuid": missing}))
    assert told.replace(secret["uuid"], "?") == told_missing.replace(missing, "?")  # exists or not: the same answer


def test_a_stranger_cannot_mount_a_private_collection_by_pdh(site):
    victim, stranger = site.new_user("victim"), site.new_user("stranger")
    pdh = private_collection(site, victim, "by pdh")["portable_data_hash"]
    told = refusal(site.backend.create, stranger, "container_requests", mounting({"portable_data_hash": pdh}))
    told_absent = refusal(site.backend.create, stranger, "container_requests",
                          mounting({"portable_data_hash": ABSENT}))
    assert told.replace(pdh, "?") == told_absent.replace(ABSENT, "?")


def test_a_stranger_cannot_commit_a_preview_or_an_uncommitted_request_into_it(site):
    victim, stranger = site.new_user("victim"), site.new_user("stranger")
    secret = private_collection(site, victim, "later")
    refusal(site.backend.create, stranger, "container_requests", mounting({"uuid": secret["uuid"]}, priority=0))
    draft = site.backend.create(stranger, "container_requests", mounting({"uuid": secret["uuid"]}, state="Uncommitted"))
    refusal(site.backend.update, stranger, "container_requests", draft["uuid"], {"state": "Committed"})


def test_a_reader_mounts_what_was_shared_with_them_pinned_to_its_content(site):
    owner, reader = site.new_user("owner"), site.new_user("reader")
    shared = private_collection(site, owner, "shared")
    share(site, owner, reader, shared["uuid"])
    request = site.backend.create(reader, "container_requests", mounting({"uuid": shared["uuid"], "path": "/"}))
    mount = site.backend.get(site.admin, "containers", request["container_uuid"])["mounts"]["/in"]
    assert mount == {"kind": "collection", "portable_data_hash": shared["portable_data_hash"], "path": "/"}
    by_pdh = site.backend.create(reader, "container_requests",
                                 mounting({"portable_data_hash": shared["portable_data_hash"]}, command=["ls"]))
    assert by_pdh["container_uuid"]


def test_the_empty_collection_is_anyones(site):
    stranger = site.new_user("stranger")
    request = site.backend.create(stranger, "container_requests", mounting({"portable_data_hash": EMPTY}))
    assert request["container_uuid"]


def test_content_held_nowhere_is_refused_alone_and_left_to_the_federation_with_peers(site, federated):
    refusal(site.backend.create, site.new_user("alone"), "container_requests",
            mounting({"portable_data_hash": ABSENT}))
    request = federated.backend.create(federated.new_user("visitor"), "container_requests",
                                       mounting({"portable_data_hash": ABSENT}))
    assert request["container_uuid"]  # read through the federation, with the requester's identity, when it runs


def test_content_held_here_only_by_others_is_refused_even_with_peers(federated):
    victim, stranger = federated.new_user("victim"), federated.new_user("stranger")
    pdh = private_collection(federated, victim, "federated")["portable_data_hash"]
    refusal(federated.backend.create, stranger, "container_requests", mounting({"portable_data_hash": pdh}))


def test_a_peers_collection_by_uuid_is_left_to_the_peer_and_an_unknown_clusters_refused(federated):
    user = federated.new_user("user")
    held = federated.backend.create(user, "container_requests", mounting({"uuid": "z2222-4zz18-0123456789abcde"}))
    assert held["container_uuid"]
    told = refusal(federated.backend.create, user, "container_requests",
                   mounting({"uuid": "z9999-4zz18-0123456789abcde"}))
    assert "does not federate" in told


def test_secret_mounts_cannot_smuggle_a_collection(site):
    victim, stranger = site.new_user("victim"), site.new_user("stranger")
    pdh = private_collection(site, victim, "secret mount")["portable_data_hash"]
    told = refusal(site.backend.create, stranger, "container_requests",
                   {**REQUEST, "secret_mounts": {"/in": {"kind": "collection", "portable_data_hash": pdh}}})
    assert "secret_mounts./in.kind" in told


# ---------------------------------------------------------------- images
def test_a_private_image_is_refused_by_pdh_by_uuid_and_by_name(site):
    victim, stranger = site.new_user("victim"), site.new_user("stranger")
    image = private_collection(site, victim, "image")
    site.backend.create(victim, "links", {"link_class": "docker_image_repo+tag", "name": "victim/tool:1",
                                          "head_uuid": image["uuid"], "tail_uuid": victim.user_uuid})
    for name in (image["portable_data_hash"], image["uuid"]):
        refusal(site.backend.create, stranger, "container_requests", {**REQUEST, "container_image": name})
    site.local.config.containers.runtime = "docker"  # where names are resolved to images in Keep
    try:
        refusal(site.backend.create, stranger, "container_requests", {**REQUEST, "container_image": "victim/tool:1"})
        mine = site.backend.create(victim, "container_requests", {**REQUEST, "container_image": "victim/tool:1"})
        assert site.backend.get(victim, "containers", mine["container_uuid"])["container_image"] == \
            image["portable_data_hash"]
    finally:
        site.local.config.containers.runtime = "bubblewrap"


def test_another_users_image_of_the_same_name_does_not_shadow_mine(site):
    victim, attacker = site.new_user("victim"), site.new_user("attacker")
    mine = private_collection(site, victim, "my image")
    site.backend.create(victim, "links", {"link_class": "docker_image_repo+tag", "name": "lab/pipeline:2",
                                          "head_uuid": mine["uuid"], "tail_uuid": victim.user_uuid})
    planted = private_collection(site, attacker, "planted image")
    share(site, attacker, victim, planted["uuid"])  # readable by the victim, and newer
    site.backend.create(attacker, "links", {"link_class": "docker_image_repo+tag", "name": "lab/pipeline:2",
                                            "head_uuid": planted["uuid"], "tail_uuid": attacker.user_uuid})
    site.local.config.containers.runtime = "docker"
    try:
        request = site.backend.create(victim, "container_requests", {**REQUEST, "container_image": "lab/pipeline:2"})
    finally:
        site.local.config.containers.runtime = "bubblewrap"
    assert site.backend.get(victim, "containers", request["container_uuid"])["container_image"] == \
        mine["portable_data_hash"]


# ---------------------------------------------------------------- joining and reusing
def test_equal_requests_of_strangers_never_share_a_container_whose_inputs_one_cannot_read(site):
    owner, stranger = site.new_user("owner"), site.new_user("stranger")
    secret = private_collection(site, owner, "join")
    first = site.backend.create(owner, "container_requests", mounting({"uuid": secret["uuid"]}))
    refusal(site.backend.create, stranger, "container_requests",
            mounting({"portable_data_hash": secret["portable_data_hash"]}))
    share(site, owner, stranger, secret["uuid"])  # now the stranger may read it: sharing is allowed
    joined = site.backend.create(stranger, "container_requests",
                                 mounting({"portable_data_hash": secret["portable_data_hash"]}))
    assert joined["container_uuid"] == first["container_uuid"]


def test_inputs_judged_elsewhere_join_only_the_requesters_own_containers(federated):
    first_user, second_user = federated.new_user("first"), federated.new_user("second")
    body = mounting({"portable_data_hash": ABSENT}, command=["cat", "/in/a-peers-file"])
    first = federated.backend.create(first_user, "container_requests", body)
    assert federated.backend.create(first_user, "container_requests", body)["container_uuid"] == \
        first["container_uuid"]
    second = federated.backend.create(second_user, "container_requests", body)
    assert second["container_uuid"] != first["container_uuid"]
    remote_uuid = mounting({"uuid": "z2222-4zz18-0123456789abcde"}, command=["cat", "/in/x"])
    mine = federated.backend.create(first_user, "container_requests", remote_uuid)
    assert federated.backend.create(second_user, "container_requests", remote_uuid)["container_uuid"] != \
        mine["container_uuid"]


@pytest.mark.parametrize("identity_bound", [
    {"runtime_constraints": {"ram": 64 << 20, "vcpus": 1, "API": True}},
    {"mounts": {"/out": {"kind": "tmp"}, "/keep": {"kind": "keep"}}},
], ids=["api-access", "keep-mount"])
def test_a_container_that_reads_as_its_user_is_not_shared_with_others(site, identity_bound):
    first_user, second_user = site.new_user("first"), site.new_user("second")
    body = {**REQUEST, "command": ["cat", "/keep/someone-elses/secret"], **identity_bound}
    first = site.backend.create(first_user, "container_requests", body)
    assert site.backend.create(second_user, "container_requests", body)["container_uuid"] != \
        first["container_uuid"]


# ---------------------------------------------------------------- outputs
def container_token(site: Site, container_uuid: str) -> Caller:
    auth = site.backend.act(site.admin, "containers", container_uuid, "auth", "GET", {})
    return site.backend.authenticate(f"v2/{auth['uuid']}/{auth['api_token']}")


def test_a_container_cannot_claim_a_collection_its_user_cannot_read_as_output(site):
    victim, attacker = site.new_user("victim"), site.new_user("attacker")
    stolen = private_collection(site, victim, "claimed")["portable_data_hash"]
    request = site.backend.create(attacker, "container_requests", {**REQUEST, "command": ["claim"]})
    itself = container_token(site, request["container_uuid"])
    for claim in (stolen, ABSENT, "not-a-pdh"):
        refusal(site.backend.update, itself, "containers", request["container_uuid"], {"output": claim})
    own = private_collection(site, attacker, "own output")["portable_data_hash"]
    assert site.backend.update(itself, "containers", request["container_uuid"], {"output": own})["output"] == own
    site.backend.update(itself, "containers", request["container_uuid"], {"output": EMPTY})


def test_an_output_that_reached_a_container_some_other_way_is_not_copied_for_the_requester(site):
    victim, attacker = site.new_user("victim"), site.new_user("attacker")
    stolen = private_collection(site, victim, "copied")["portable_data_hash"]
    request = site.backend.create(attacker, "container_requests", {**REQUEST, "command": ["copied"]})
    uuid = request["container_uuid"]
    site.backend.act(site.admin, "containers", uuid, "lock", "POST", {})
    site.backend.update(site.admin, "containers", uuid, {"state": "Running"})
    # the dispatcher's token could set any output (a bug, a stolen dispatcher token): the lifecycle still checks
    site.backend.update(site.admin, "containers", uuid, {"state": "Complete", "exit_code": 0, "output": stolen})
    final = site.backend.get(attacker, "container_requests", request["uuid"])
    assert final["state"] == "Final" and final["output_uuid"] is None


def test_a_request_stored_before_the_rules_is_judged_whole_when_committed(site):
    tenant = site.new_user("tenant")
    draft = site.backend.create(tenant, "container_requests", {**REQUEST, "state": "Uncommitted"})
    with site.local.db.session() as session:  # as an older version let it in
        session.execute(update(ContainerRequest).where(ContainerRequest.uuid == draft["uuid"])
                        .values(mounts={"/out": {"kind": "tmp"}, "/in": {"kind": "collection", "uuid": 5}}))
    told = refusal(site.backend.update, tenant, "container_requests", draft["uuid"], {"state": "Committed"})
    assert "mounts./in.uuid" in told
