"""Hostile or careless requests get a 4xx with a message a person understands, never a 500; a
stranger's body is not read; nothing wrong is stored. In process, on the real API app."""

import json
from pathlib import Path

import pytest

from tests.support.asgi import AsgiTransport
from tests.support.backends import Site, single_cluster

BASE = "https://z1111.test/arvados/v1"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("bad-input")))


def call(site: Site, method: str, path: str, body: bytes | None = None, token: str | None = "admin",
         content_type: str = "application/json") -> tuple[int, dict]:
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {site.admin.token if token == 'admin' else token}"
    response = AsgiTransport(site.apps["self"]).request(method, f"{BASE}/{path}", body, headers)
    return response.status, json.loads(response.data or b"{}")


BAD_BODIES = {
    "not UTF-8": b'{"collection": {"name": "\xff\xfe"}}',
    "nested 100k deep": b"[" * 100_000 + b"]" * 100_000,
    "lone surrogate": b'{"collection": {"name": "\\ud800"}}',
    "not an object": b"[1, 2]",
    "truncated": b'{"collection": {',
}


@pytest.mark.parametrize("name", BAD_BODIES)
def test_bad_json_bodies_are_400(site: Site, name: str) -> None:
    status, body = call(site, "POST", "collections", BAD_BODIES[name])
    assert status == 400, body
    assert "JSON" in body["errors"][0]


@pytest.mark.parametrize(("attrs", "field"), [
    ({"properties": [1, 2]}, "properties must be an object"),
    ({"manifest_text": 5}, "manifest_text must be a string"),
    ({"name": 123}, "name must be a string or null"),
    ({"replication_desired": "two"}, "replication_desired must be an integer"),
    ({"owner_uuid": "not-a-uuid"}, "is not a UUID"),
])
def test_wrong_attribute_types_are_422_and_nothing_is_stored(site: Site, attrs: dict, field: str) -> None:
    before = call(site, "GET", "collections?limit=0")[1]["items_available"]
    status, body = call(site, "POST", "collections", json.dumps({"collection": attrs}).encode())
    assert status == 422, body
    assert field in body["errors"][0]
    assert call(site, "GET", "collections?limit=0")[1]["items_available"] == before


@pytest.mark.parametrize("query", [
    'filters=[["name","=",{"a":1}]]',
    'filters=[["name","in",[{"a":1}]]]',
    'filters=[["name","like",5]]',
    'filters=[["name","=","\\ud800"]]',
    "offset=99999999999999999999",
    "offset=-5",
    "limit=-1",
    "limit=ten",
    'select=["uuid","no_such_column"]',
])
def test_bad_list_parameters_are_400(site: Site, query: str) -> None:
    call(site, "POST", "collections", json.dumps({"collection": {"name": "one to list"}}).encode())
    status, body = call(site, "GET", f"collections?{query}")
    assert status == 400, body
    assert body["errors"][0]


def test_a_form_encoded_body_works_as_arvados_clients_send_it(site: Site) -> None:
    form = "collection=" + json.dumps({"name": "from a form"}).replace(" ", "+")
    status, body = call(site, "POST", "collections", form.encode(), content_type="application/x-www-form-urlencoded")
    assert status == 200, body
    assert body["name"] == "from a form"


def test_a_token_in_a_form_body_authenticates(site: Site) -> None:
    form = f"api_token={site.admin.token}&collection=" + json.dumps({"name": "token in form"})
    status, body = call(site, "POST", "collections", form.encode(), token=None,
                        content_type="application/x-www-form-urlencoded")
    assert status == 200, body


def test_other_media_types_are_415(site: Site) -> None:
    status, body = call(site, "POST", "collections", b"--x\r\n", content_type="multipart/form-data; boundary=x")
    assert status == 415, body


def test_a_strangers_body_is_not_read(site: Site) -> None:
    # invalid JSON from an unauthenticated caller: refused for the token, before the body is parsed
    status, body = call(site, "POST", "collections", b"{not json", token=None)
    assert status == 401, body
    status, body = call(site, "POST", "collections", b"{not json", token="v2/z1111-gj3su-000000000000000/nope")
    assert status == 401, body


def test_a_body_over_the_limit_is_413(site: Site) -> None:
    limit = site.local.config.api.max_request_bytes
    status, body = call(site, "POST", "collections", b" " * (limit + 1))
    assert status == 413, body
    assert str(limit) in body["errors"][0]


def test_permission_links_need_real_ends(site: Site) -> None:
    made = call(site, "POST", "collections", json.dumps({"collection": {"name": "to share"}}).encode())[1]
    user = site.admin.user_uuid
    for tail, head, expected in [("nobody", made["uuid"], "must be a UUID"),
                                 ("z1111-tpzed-00000000000nope", made["uuid"], "does not exist"),
                                 (user, "z1111-4zz18-00000000000nope", "does not exist")]:
        link = {"link_class": "permission", "name": "can_read", "tail_uuid": tail, "head_uuid": head}
        status, body = call(site, "POST", "links", json.dumps({"link": link}).encode())
        assert status == 422 and expected in body["errors"][0], body


def test_a_token_cannot_be_born_expired(site: Site) -> None:
    attrs = {"expires_at": "2001-01-01T00:00:00Z"}
    status, body = call(site, "POST", "api_client_authorizations",
                        json.dumps({"api_client_authorization": attrs}).encode())
    assert status == 422 and "past" in body["errors"][0], body


def test_a_trashed_collection_is_not_found_unless_asked(site: Site) -> None:
    made = call(site, "POST", "collections", json.dumps({"collection": {"name": "to trash"}}).encode())[1]
    assert call(site, "POST", f"collections/{made['uuid']}/trash")[0] == 200
    status, body = call(site, "GET", f"collections/{made['uuid']}")
    assert status == 404 and "trash" in body["errors"][0]
    status, body = call(site, "GET", f"collections/{made['uuid']}?include_trash=true")
    assert status == 200 and body["is_trashed"] is True


def test_unnamed_collections_do_not_collide(site: Site) -> None:
    for _ in range(2):
        status, body = call(site, "POST", "collections", json.dumps({"collection": {"name": None}}).encode())
        assert status == 200 and body["name"] is None, body
