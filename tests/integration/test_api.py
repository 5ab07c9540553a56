"""The REST API over real HTTPS, on SQLite and on PostgreSQL: resources, conventions, errors."""

from __future__ import annotations

import json

import pytest

from archipelago.sdk import ApiClient, ApiRequestError, Collection
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration


@pytest.fixture
def admin(cluster) -> ApiClient:
    return ApiClient(cluster.api_url, cluster.admin_token, insecure=True)


def test_discovery_and_config_need_no_token(cluster):
    import urllib3

    http = urllib3.PoolManager(cert_reqs="CERT_NONE")
    doc = json.loads(http.request("GET", f"{cluster.api_url}/discovery/v1/apis/arvados/v1/rest").data)
    assert doc["uuidPrefix"] == "z1111" and doc["rootUrl"] == cluster.api_url + "/"
    assert doc["resources"]["collections"]["methods"]["get"]["path"] == "collections/{uuid}"
    config = json.loads(http.request("GET", f"{cluster.api_url}/arvados/v1/config").data)
    assert config["ClusterID"] == "z1111" and "BlobSigningKey" not in json.dumps(config)


def test_auth_errors(cluster, admin):
    with pytest.raises(ApiRequestError) as info:
        ApiClient(cluster.api_url, "v2/z1111-gj3su-000000000000000/wrong", insecure=True).users.current()
    assert info.value.status == 401
    assert admin.users.current()["is_admin"] is True
    assert admin.api_client_authorizations.current()["uuid"].startswith("z1111-gj3su-")


def test_collection_lifecycle_and_signatures(cluster, admin):
    alice = new_user(admin, "alice")
    collection = Collection(alice)
    collection.write("dir/hello.txt", b"hello\n")
    collection.write("big.bin", b"\1" * 100_000)
    record = collection.save_new("first")
    assert record["uuid"].startswith("z1111-4zz18-") and record["file_count"] == 2
    assert record["file_size_total"] == 100_006
    assert "+A" in record["manifest_text"] and "+A" not in record["unsigned_manifest_text"]
    same = Collection(alice, record["portable_data_hash"])  # get by content address
    assert same.read("dir/hello.txt") == b"hello\n"
    # a manifest signed for someone else's token is refused
    bob = new_user(admin, "bob")
    with pytest.raises(ApiRequestError) as info:
        bob.collections.create({"manifest_text": record["manifest_text"], "name": "stolen"})
    assert info.value.status == 403 and "signature" in info.value.message
    # an unsigned locator too (admins may, as in Arvados)
    with pytest.raises(ApiRequestError) as info:
        alice.collections.create({"manifest_text": record["unsigned_manifest_text"], "name": "unsigned"})
    assert info.value.status == 403
    admin.collections.create({"manifest_text": record["unsigned_manifest_text"], "name": "by admin"})
    # a wrong client-side PDH is a validation error
    with pytest.raises(ApiRequestError) as info:
        alice.collections.create({"manifest_text": record["manifest_text"], "portable_data_hash": "0" * 32 + "+1"})
    assert info.value.status == 422
    # invalid manifests say why
    with pytest.raises(ApiRequestError) as info:
        alice.collections.create({"manifest_text": ". nothex 0:1:a\n"})
    assert info.value.status == 422 and "line 1" in info.value.message


def test_names_are_unique_per_project(cluster, admin):
    alice = new_user(admin, "alice")
    alice.collections.create({"name": "results", "manifest_text": ""})
    with pytest.raises(ApiRequestError) as info:
        alice.collections.create({"name": "results", "manifest_text": ""})
    assert info.value.status == 422
    assert alice.collections.create({"name": "results", "manifest_text": ""}, ensure_unique_name=True)["name"] \
        == "results (2)"


def test_trash_and_untrash(cluster, admin):
    alice = new_user(admin, "alice")
    uuid = alice.collections.create({"name": "t", "manifest_text": ""})["uuid"]
    alice.request("POST", f"collections/{uuid}/trash")
    assert alice.collections.list([["uuid", "=", uuid]])["items"] == []
    alice.request("POST", f"collections/{uuid}/untrash")
    assert alice.collections.list([["uuid", "=", uuid]])["items_available"] == 1
    # Arvados clients (arvados-cwl-runner) trash by update, optionally with other changes
    trashed = alice.collections.update(uuid, {"is_trashed": True, "name": "t2"})
    assert trashed["is_trashed"] and trashed["name"] == "t2" and trashed["trash_at"]
    assert not alice.collections.update(uuid, {"is_trashed": False})["is_trashed"]


def test_list_filters_order_paging_select(cluster, admin):
    alice = new_user(admin, "alice")
    project = alice.groups.create({"name": "runs", "group_class": "project"})["uuid"]
    for n in range(12):
        alice.collections.create({"name": f"run-{n:02d}", "manifest_text": "", "owner_uuid": project,
                                  "properties": {"n": str(n % 3), "tags": ["even"] if n % 2 == 0 else ["odd"]},
                                  "storage_classes_desired": ["archive"] if n == 7 else ["default"]})
    page = alice.collections.list([["name", "like", "run-%"]], order=["name asc"], limit=5, offset=5)
    assert [c["name"] for c in page["items"]] == [f"run-{n:02d}" for n in range(5, 10)]
    assert page["items_available"] == 12 and page["limit"] == 5 and page["offset"] == 5
    assert page["kind"] == "arvados#collectionList" and "manifest_text" not in page["items"][0]
    assert alice.collections.list([["name", "in", ["run-01", "run-02"]]])["items_available"] == 2
    assert alice.collections.list([["name", "not in", ["run-01"]], ["name", "like", "run-%"]])[
        "items_available"] == 11
    assert alice.collections.list([["properties.n", "=", "1"]])["items_available"] == 4
    assert alice.collections.list([["properties.n", "exists", True]])["items_available"] == 12
    assert alice.collections.list([["uuid", "is_a", "arvados#collection"]])["items_available"] == 12
    assert alice.collections.list([["owner_uuid", "=", project]])["items_available"] == 12
    assert alice.collections.list([["name", "ilike", "RUN-0%"]])["items_available"] == 10
    assert alice.collections.list([["name", ">", "run-10"]])["items_available"] == 1
    assert alice.collections.list([["any", "ilike", "%RUN-1%"]])["items_available"] == 2  # run-10, run-11
    assert alice.collections.list([["properties.tags", "contains", "odd"]])["items_available"] == 6
    assert alice.collections.list([["storage_classes_desired", "contains", "archive"]])["items_available"] == 1
    selected = alice.collections.list(limit=1, select=["uuid", "name"])["items"][0]
    assert set(selected) == {"uuid", "name", "kind"}
    with pytest.raises(ApiRequestError) as info:
        alice.collections.list([["nonesuch", "=", 1]])
    assert info.value.status == 400
    with pytest.raises(ApiRequestError) as info:
        alice.collections.list([["name", "~~", 1]])
    assert info.value.status == 400


def test_revoked_token_stops_working(cluster, admin):
    alice = new_user(admin, "alice")
    me = alice.api_client_authorizations.current()
    alice.api_client_authorizations.delete(me["uuid"])
    with pytest.raises(ApiRequestError) as info:
        alice.users.current()
    assert info.value.status == 401


def test_errors_have_the_arvados_shape(cluster, admin):
    import urllib3

    http = urllib3.PoolManager(cert_reqs="CERT_NONE")
    resp = http.request("GET", f"{cluster.api_url}/arvados/v1/collections/z1111-4zz18-000000000000000",
                        headers={"Authorization": f"Bearer {cluster.admin_token}"})
    assert resp.status == 404 and json.loads(resp.data)["errors"]


def test_properties_filters_follow_updates(cluster, admin):
    alice = new_user(admin, "alice")
    uuid = alice.collections.create({"name": "p", "manifest_text": "", "properties": {"stage": "raw", "n": 3}})["uuid"]

    def found(*filters):
        return [c["uuid"] for c in alice.collections.list(list(filters))["items"]]

    assert found(["properties.stage", "=", "raw"]) == [uuid]
    assert found(["properties.n", "=", 3]) == [uuid]
    assert found(["properties.stage", "in", ["raw", "done"]]) == [uuid]
    assert found(["properties.stage", "like", "ra%"]) == [uuid]
    alice.collections.update(uuid, {"properties": {"stage": "done"}})
    assert found(["properties.stage", "=", "raw"]) == []
    assert found(["properties.stage", "=", "done"]) == [uuid]
    assert found(["properties.n", "exists", True]) == []
    assert uuid in found(["properties.n", "exists", False])
    assert found(["properties.stage", "!=", "raw"]) == [uuid]


def test_workflows_are_stored_listed_and_private_to_their_owner(cluster, admin):
    alice, bob = new_user(admin, "alice"), new_user(admin, "bob")
    definition = '{"cwlVersion": "v1.2", "class": "Workflow", "inputs": {}, "outputs": {}, "steps": {}}'
    created = alice.workflows.create({"name": "align", "definition": definition})
    assert created["uuid"].startswith("z1111-7fd4e-") and created["kind"] == "arvados#workflow"
    assert alice.workflows.get(created["uuid"])["definition"] == definition
    alice.workflows.update(created["uuid"], {"description": "aligns reads"})
    listed = alice.workflows.list([["name", "=", "align"]])["items"]
    assert [w["description"] for w in listed] == ["aligns reads"]
    with pytest.raises(ApiRequestError) as info:
        bob.workflows.get(created["uuid"])
    assert info.value.status == 404
    assert bob.workflows.list([["uuid", "=", created["uuid"]]])["items"] == []
    with pytest.raises(ApiRequestError) as info:
        alice.workflows.create({"name": "x", "script": "not a workflow field"})
    assert info.value.status == 422
    alice.workflows.delete(created["uuid"])
    with pytest.raises(ApiRequestError):
        alice.workflows.get(created["uuid"])


@pytest.mark.parametrize("attrs", [{"name": "a\0b"}, {"properties": {"k\0": "v"}}, {"properties": {"k": ["\0"]}},
                                   {"description": "\0"}])
def test_a_nul_character_is_refused_with_422_on_every_database(cluster, admin, attrs):
    with pytest.raises(ApiRequestError) as refused:
        admin.collections.create({"manifest_text": "", **attrs})
    assert refused.value.status == 422 and "NUL" in str(refused.value)
    with pytest.raises(ApiRequestError) as refused:
        admin.groups.create({"group_class": "project", "name": "ok", **attrs})
    assert refused.value.status == 422
