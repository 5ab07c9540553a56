"""`GET /arvados/v1/collections/{UUID|PDH}/files` attacked in process (the API app, every byte of
the request as sent): a stranger with no token, a made-up one or garbage; a tenant naming another's
collection by UUID or PDH; paths that try to leave or bend the collection (`..`, percent-encoded,
NUL, backslash, empty components); a token whose scopes do not reach collections; a trashed
collection; restricted data read from another cluster. Each refusal is paired with the owner's
success, and no refusal carries a file name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from archipelago.rpc import RawResponse
from tests.support.asgi import AsgiTransport
from tests.support.backends import Site, federation, single_cluster

MADE_UP = "v2/z1111-gj3su-000000000000000/madeupsecret0123456789abcdefghijklmnopqrstuvw"
MANIFEST = (f". {'a' * 32}+10 0:4:notes.txt\n./cohort {'b' * 32}+20 0:20:secret\\040genotypes.csv\n")
SECRET = b"genotypes"


def raw(site: Site, target: str, token: str | None) -> RawResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return AsgiTransport(site.apps["self"]).request("GET", f"https://{site.cluster_id}.test{target}", None, headers)


def files(key: str, query: str = "") -> str:
    return f"/arvados/v1/collections/{key}/files" + (f"?{query}" if query else "")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(tmp_path_factory.mktemp("files-security"))


@pytest.fixture(scope="module")
def alice(site: Site) -> Any:
    return site.new_user("alice")


@pytest.fixture(scope="module")
def private(site: Site, alice: Any) -> dict[str, Any]:
    return site.local.create(site.admin, "collections", {"manifest_text": MANIFEST, "owner_uuid": alice.user_uuid,
                                                         "name": "private cohort"})


def keys(record: dict[str, Any]) -> list[str]:
    pdh = record["portable_data_hash"]
    return [record["uuid"], pdh, pdh.replace("+", "-")]


def test_the_owner_reads_every_way_the_attacks_below_try(site: Site, alice: Any, private: dict) -> None:
    for key in keys(private):
        for query in ("", "recursive=true", "path=cohort", "path=cohort%2Fsecret%20genotypes.csv",
                      "path=cohort/secret%20genotypes.csv&segments=true"):
            answer = raw(site, files(key, query), alice.token)
            assert answer.status == 200, (key, query, answer.data)
    found = json.loads(raw(site, files(private["uuid"], "path=cohort/secret%20genotypes.csv"), alice.token).data)
    assert found["items"][0]["segments"][0][0].startswith("b" * 32 + "+20+A")


@pytest.mark.parametrize("token", [None, MADE_UP, "not-even-a-token"])
def test_a_stranger_gets_401(site: Site, private: dict, token: str | None) -> None:
    for key in keys(private):
        for query in ("", "recursive=true&segments=true", "path=cohort/secret%20genotypes.csv"):
            answer = raw(site, files(key, query), token)
            assert answer.status == 401, (key, query, answer.status, answer.data)
            assert SECRET not in answer.data


def test_another_tenant_cannot_tell_the_collection_exists(site: Site, private: dict) -> None:
    """By UUID or PDH: 404, as for content held nowhere and a UUID never issued."""
    bob = site.new_user("bob")
    nowhere = "0" * 32 + "+" + private["portable_data_hash"].split("+")[1]
    for key in [*keys(private), nowhere, "z1111-4zz18-" + "x" * 15]:
        for query in ("", "recursive=true&segments=true", "path=cohort/secret%20genotypes.csv", "path=nope"):
            answer = raw(site, files(key, query), bob.token)
            assert answer.status == 404, (key, query, answer.status, answer.data)
            assert SECRET not in answer.data and b"notes" not in answer.data
    assert raw(site, files("not-a-uuid"), bob.token).status == 400


@pytest.mark.parametrize("path", [
    "cohort/../notes.txt", "cohort/%2e%2e/notes.txt", "cohort%2F..%2Fnotes.txt", "cohort/%2E%2E%2Fnotes.txt",
    "./notes.txt", "%2E%2Fnotes.txt", "cohort//secret%20genotypes.csv", "notes.txt%00.csv",
    "cohort%5c..%5cnotes.txt", "..", "%2e%2e", "/notes.txt", ".", "cohort/.",
])
def test_no_path_leaves_or_bends_the_collection(site: Site, alice: Any, private: dict, path: str) -> None:
    """Refused with 400 even for the owner: a traversal is never "normalised" into something else."""
    for key in keys(private):
        answer = raw(site, files(key, f"path={path}&segments=true"), alice.token)
        assert answer.status == 400, (key, path, answer.status, answer.data)
        assert b"segments" not in answer.data and b"+A" not in answer.data  # the error names only the path given


@pytest.mark.parametrize("key", ["..", "%2e%2e", "%2E%2E%2F..", "z1111-4zz18-xxxxxxxxxxxxxxx%2F..", "."])
def test_the_collection_part_of_the_url_is_no_path_either(site: Site, alice: Any, key: str) -> None:
    answer = raw(site, files(key, "recursive=true"), alice.token)
    assert answer.status in (400, 404), (key, answer.status, answer.data)
    assert SECRET not in answer.data


@pytest.mark.parametrize("query", ["limit=-1", "offset=-5", "limit=abc", "recursive=maybe", "offset=1e3"])
def test_malformed_pages_are_400(site: Site, alice: Any, private: dict, query: str) -> None:
    assert raw(site, files(private["uuid"], query), alice.token).status == 400


def test_a_token_whose_scopes_do_not_reach_collections(site: Site, alice: Any, private: dict) -> None:
    narrow = site.local.create_token(alice.user_uuid, ["GET /arvados/v1/users/current"])
    wide = site.local.create_token(alice.user_uuid, ["GET /arvados/v1/collections/"])
    for key in keys(private):
        answer = raw(site, files(key, "recursive=true&segments=true"), narrow)
        assert answer.status == 403 and SECRET not in answer.data
        assert raw(site, files(key, "recursive=true"), wide).status == 200


def test_a_trashed_collection_is_not_listed(site: Site, alice: Any) -> None:
    record = site.local.create(site.admin, "collections", {"manifest_text": MANIFEST.replace("notes", "trashed"),
                                                           "owner_uuid": alice.user_uuid, "name": "to trash"})
    assert raw(site, files(record["uuid"]), alice.token).status == 200
    site.local.trash(site.admin, "collections", record["uuid"])
    for key in keys(record):
        answer = raw(site, files(key, "recursive=true"), alice.token)
        assert answer.status == 404 and b"trashed" not in answer.data


def test_restricted_data_is_refused_to_a_reader_on_another_cluster(tmp_path: Path) -> None:
    """Residency: a reader of z2222 allowed to read it still gets 403, through her home cluster or
    by going to z1111 as a forwarding peer would; z1111's own users read it."""
    sites = federation(tmp_path)
    z1, z2 = sites["z1111"], sites["z2222"]
    visitor = z2.new_user("visitor")
    local_user = z1.new_user("local")
    record = z1.local.create(z1.admin, "collections", {"manifest_text": MANIFEST, "name": "stays",
                                                       "residency": "cluster"})
    for user in (visitor, local_user):
        z1.local.create(z1.admin, "links", {"link_class": "permission", "name": "can_read",
                                            "tail_uuid": user.user_uuid, "head_uuid": record["uuid"]})
    assert raw(z1, files(record["uuid"], "recursive=true"), local_user.token).status == 200
    for key in (record["uuid"], record["portable_data_hash"]):
        answer = raw(z2, files(key, "recursive=true&segments=true"), visitor.token)
        assert answer.status == 403, (key, answer.status, answer.data)
        assert SECRET not in answer.data
        forwarded = raw(z1, files(key, "recursive=true&forwarded_for=z2222"), local_user.token)
        assert forwarded.status == 403 and SECRET not in forwarded.data


def test_a_large_collection_served_from_its_stored_index_is_guarded_the_same(site: Site, alice: Any) -> None:
    """A manifest of a megabyte or more is listed from an index kept on disk, not parsed per request:
    the same refusals hold for it (and the index is the owner's collection's, not a shared one)."""
    names = " ".join(f"0:1:sample-{n:06d}-secret.vcf" for n in range(60_000))
    manifest = f". {'c' * 32}+1 {names}\n./cohort {'b' * 32}+20 0:20:secret\\040genotypes.csv\n"
    assert len(manifest) >= 1 << 20
    big = site.local.create(site.admin, "collections", {"manifest_text": manifest, "owner_uuid": alice.user_uuid,
                                                        "name": "large private cohort"})
    bob = site.new_user("bob-large")
    for key in keys(big):
        owner = raw(site, files(key, "path=cohort/secret%20genotypes.csv&segments=true"), alice.token)
        assert owner.status == 200 and json.loads(owner.data)["items"][0]["size"] == 20
        assert raw(site, files(key, "limit=5"), alice.token).status == 200
        for token, status in ((None, 401), (MADE_UP, 401), (bob.token, 404)):
            for query in ("", "recursive=true&segments=true", "path=cohort/secret%20genotypes.csv"):
                answer = raw(site, files(key, query), token)
                assert answer.status == status, (key, query, answer.status)
                assert b"secret" not in answer.data and b"sample-" not in answer.data
        for path in ("cohort/../sample-000001-secret.vcf", "cohort%2F..%2Fsample-000001-secret.vcf", ".."):
            answer = raw(site, files(key, f"path={path}&segments=true"), alice.token)
            assert answer.status == 400 and b"+A" not in answer.data
