"""The resolver's and the feed's doors, attacked: a real resolver process on loopback refuses pushes
and PDH lookups from strangers (no signature, an unknown site), forged signatures (the wrong key, a
body changed after signing) and replays (a push sent again, even after the resolver restarts; a
lookup sent twice); a site cannot register another site's objects; a stranger resolving a private
identifier learns nothing. The cluster's feed (`/_resolver/feed`) refuses the same, in process."""

from __future__ import annotations

import json
import time

import orjson
import pytest
import urllib3

from archipelago.config import parse_config
from archipelago.resolver.signing import sign
from tests.support.asgi import AsgiTransport
from tests.support.backends import local_backend
from tests.support.resolver import push_sites, resolver_process

KEYS = {"z1111": "a" * 32, "z2222": "b" * 32}
PDH = "0cc175b9c0f1b6a831c399e269772661+1"
http = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    with resolver_process(tmp_path_factory.mktemp("resolver"), push_sites(KEYS)) as process:
        yield process


def push(url: str, body: dict, key: str = KEYS["z1111"], site: str = "z1111", headers: dict | None = None,
         data: bytes | None = None) -> urllib3.BaseHTTPResponse:
    raw = orjson.dumps(body)
    signed = headers if headers is not None else sign(key, site, "POST", "/resolver/v1/push", raw)
    return http.request("POST", url + "/resolver/v1/push", body=data if data is not None else raw, headers=signed)


def registration(site: str = "z1111") -> dict:
    return {"uuid": f"{site}-4zz18-000000000000001", "kind": "collection", "pdh": PDH, "size": 1}


def test_a_stranger_cannot_push(resolver):
    body = {"after": 0, "to": 1, "identifiers": {"doi:10.1/stranger": [registration()]}}
    assert push(resolver.url, body, headers={}).status == 401  # unsigned
    forged = push(resolver.url, body, key="c" * 32, site="z9999")  # a made-up site
    assert forged.status == 401 and b"unknown site" in forged.data


def test_a_forged_signature_is_refused(resolver):
    body = {"after": 0, "to": 1, "identifiers": {"doi:10.1/forged": [registration()]}}
    assert push(resolver.url, body, key=KEYS["z2222"], site="z1111").status == 401  # another site's key
    signed = sign(KEYS["z1111"], "z1111", "POST", "/resolver/v1/push", orjson.dumps(body))
    tampered = orjson.dumps({**body, "identifiers": {"doi:10.1/evil": [registration()]}})
    assert push(resolver.url, body, headers=signed, data=tampered).status == 401  # changed after signing
    resolved = http.request("GET", resolver.url + "/resolver/v1/resolve?id=doi:10.1/evil")
    assert json.loads(resolved.data)["holders"] == []


def test_a_replayed_push_is_refused_even_after_a_restart(resolver):
    raw = orjson.dumps({"after": None})
    headers = sign(KEYS["z2222"], "z2222", "POST", "/resolver/v1/push", raw)
    assert http.request("POST", resolver.url + "/resolver/v1/push", body=raw, headers=headers).status == 200
    again = http.request("POST", resolver.url + "/resolver/v1/push", body=raw, headers=headers)
    assert again.status == 401 and b"replayed" in again.data
    resolver.stop()
    resolver.start()
    assert http.request("POST", resolver.url + "/resolver/v1/push", body=raw, headers=headers).status == 401
    old = sign(KEYS["z2222"], "z2222", "POST", "/resolver/v1/push", raw, at=time.time() - 3600)
    assert http.request("POST", resolver.url + "/resolver/v1/push", body=raw, headers=old).status == 401


def test_a_site_cannot_register_another_sites_objects(resolver):
    body = {"after": 0, "to": 1, "identifiers": {"doi:10.1/not-mine": [registration("z2222")]}}
    assert push(resolver.url, body).status == 400
    resolved = http.request("GET", resolver.url + "/resolver/v1/resolve?id=doi:10.1/not-mine")
    assert json.loads(resolved.data)["holders"] == []


def test_pdh_holdings_are_told_only_to_member_sites_and_once_per_signature(resolver):
    assert push(resolver.url, {"after": None}).status == 200
    assert push(resolver.url, {"after": 0, "to": 1, "contents": {PDH: True}}).status == 200
    target = f"/resolver/v1/contents/{PDH.replace('+', '%2B')}"
    assert http.request("GET", resolver.url + target).status == 401  # a stranger
    made_up = sign("c" * 32, "z2222", "GET", target)
    assert http.request("GET", resolver.url + target, headers=made_up).status == 401  # forged
    signed = sign(KEYS["z2222"], "z2222", "GET", target)
    answer = http.request("GET", resolver.url + target, headers=signed)
    assert answer.status == 200 and json.loads(answer.data)["holders"][0]["site"] == "z1111"
    assert http.request("GET", resolver.url + target, headers=signed).status == 401  # replayed
    # and anyone resolving keep:PDH learns nothing of unpublished content
    resolved = http.request("GET", resolver.url + f"/resolver/v1/resolve?id=keep:{PDH.replace('+', '%2B')}")
    assert json.loads(resolved.data)["holders"] == []


def test_the_feed_refuses_strangers_forgeries_and_replays(tmp_path):
    from archipelago.api.app import create_app

    config = parse_config({"cluster_id": "z1111", "system_root_token": "root-z1111-0123456789",
                           "database_url": f"sqlite:///{tmp_path / 'z.db'}",
                           "collections": {"blob_signing_key": "k" * 40},
                           "resolver": {"urls": ["http://127.0.0.1:1"], "key": KEYS["z1111"]}})
    transport = AsgiTransport(create_app(config, local_backend(config)))
    target = "/_resolver/feed?after=0&limit=10"

    def get(headers: dict) -> int:
        return transport.request("GET", "https://z1111.test" + target, None, headers).status

    assert get({}) == 401
    assert get({"Authorization": "Bearer v2/z1111-gj3su-000000000000000/madeup"}) == 401  # an API token is no key
    assert get(sign(KEYS["z2222"], "z1111", "GET", target)) == 401  # forged with another key
    signed = sign(KEYS["z1111"], "z1111", "GET", target)
    assert get(signed) == 200
    assert get(signed) == 401  # replayed
