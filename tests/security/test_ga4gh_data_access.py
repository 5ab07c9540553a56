"""DRS and the file-download endpoint attacked on a real cluster (SQLite and PostgreSQL): a stranger
with a made-up token or none, a tenant naming another's collection by UUID or PDH, paths that try
to leave the collection (`..`, percent-encoded, NUL, backslash), ranges out of bounds, and a token
whose scopes do not reach collections. Each refusal is paired with the owner's success.
Residency (a reader outside the cluster): test_ga4gh_residency.py."""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration
MADE_UP = "v2/z1111-gj3su-000000000000000/madeupsecret0123456789abcdefghijklmnopqrstuvw"
BODY = b"id,genotype\n1,AA\n2,AG\n"


def raw_get(api_url: str, path: str, token: str | None, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    """A GET of exactly this path (no client-side normalising of `..` or re-encoding)."""
    where = urlsplit(api_url)
    connection = http.client.HTTPSConnection(where.hostname or "", where.port,
                                             context=ssl._create_unverified_context())
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, {k.lower(): v for k, v in response.getheaders()}


@pytest.fixture(scope="module")
def admin(cluster: Any) -> ApiClient:
    return ApiClient(cluster.api_url, cluster.admin_token, insecure=True)


@pytest.fixture(scope="module")
def alice(admin: ApiClient) -> ApiClient:
    return new_user(admin, "alice")


@pytest.fixture(scope="module")
def bob(admin: ApiClient) -> ApiClient:
    return new_user(admin, "bob")


@pytest.fixture(scope="module")
def private(alice: ApiClient) -> dict[str, Any]:
    collection = Collection(alice)
    collection.write("cohort/genotypes.csv", BODY)
    collection.write("notes.txt", b"alice's notes\n")
    return collection.save_new("private cohort")


def drs(pdh: str, path: str = "", suffix: str = "") -> str:
    return "/ga4gh/drs/v1/objects/" + quote(f"{pdh}/{path}" if path else pdh, safe="") + suffix


def files(key: str, path: str) -> str:
    return f"/arvados/v1/collections/{key}/files/{path}"


def test_the_owner_reads_every_way_the_attacks_below_try(cluster: Any, alice: ApiClient, private: dict) -> None:
    pdh = private["portable_data_hash"]
    for path in (drs(pdh), drs(pdh, "cohort/genotypes.csv"), drs(pdh, "cohort/genotypes.csv", "/access/https")):
        assert raw_get(cluster.api_url, path, alice.token)[0] == 200, path
    for key in (private["uuid"], pdh, pdh.replace("+", "-")):
        assert raw_get(cluster.api_url, files(key, "cohort/genotypes.csv"), alice.token)[:2] == (200, BODY)


@pytest.mark.parametrize("token", [None, MADE_UP, "not-even-a-token"])
def test_a_stranger_gets_401_everywhere(cluster: Any, private: dict, token: str | None) -> None:
    pdh = private["portable_data_hash"]
    for path in (drs(pdh), drs(pdh, "notes.txt"), drs(pdh, "notes.txt", "/access/https"),
                 files(private["uuid"], "notes.txt"), files(pdh, "notes.txt")):
        status, data, _ = raw_get(cluster.api_url, path, token)
        assert status == 401, (path, status, data)
        assert b"alice" not in data


def test_another_tenant_cannot_tell_the_collection_exists(cluster: Any, bob: ApiClient, private: dict) -> None:
    """By PDH (DRS ids, download by content) or by UUID: 404, the same as for content held nowhere."""
    pdh = private["portable_data_hash"]
    nowhere = "0" * 32 + "+" + pdh.split("+")[1]
    for path in (drs(pdh), drs(pdh, "notes.txt"), drs(pdh, "notes.txt", "/access/https"),
                 drs(pdh, "notes.txt", "?checksum=sha-256"), files(private["uuid"], "notes.txt"),
                 files(pdh, "notes.txt"), files(pdh.replace("+", "-"), "notes.txt"), drs(nowhere)):
        status, data, _ = raw_get(cluster.api_url, path, bob.token)
        assert status == 404, (path, status, data)
        assert b"alice's notes" not in data and b"genotype" not in data


@pytest.mark.parametrize("path", [
    "cohort/../notes.txt", "cohort/%2e%2e/notes.txt", "cohort/..%2fnotes.txt", "cohort/%2E%2E%2Fnotes.txt",
    "./notes.txt", "cohort//genotypes.csv", "notes.txt%00.csv", "cohort%5c..%5cnotes.txt", "..", "%2e%2e",
])
def test_no_path_leaves_or_bends_the_collection(cluster: Any, alice: ApiClient, private: dict, path: str) -> None:
    """Refused with 400 even for the owner (a traversal is never "normalised" into something else)."""
    for target in (files(private["uuid"], path), "/ga4gh/drs/v1/objects/" + quote(private["portable_data_hash"],
                                                                                    safe="") + "%2F" + path):
        status, data, _ = raw_get(cluster.api_url, target, alice.token)
        assert status == 400, (target, status, data)
        assert b"alice's notes" not in data


def test_another_users_uuid_in_a_download_url_is_not_found(cluster: Any, alice: ApiClient, bob: ApiClient) -> None:
    mine = Collection(bob)
    mine.write("x.txt", b"bob's\n")
    record = mine.save_new("bob's")
    assert raw_get(cluster.api_url, files(record["uuid"], "x.txt"), bob.token)[:2] == (200, b"bob's\n")
    assert raw_get(cluster.api_url, files(record["uuid"], "x.txt"), alice.token)[0] == 404
    assert raw_get(cluster.api_url, files("z1111-4zz18-" + "x" * 15, "x.txt"), alice.token)[0] == 404
    assert raw_get(cluster.api_url, files("not-a-uuid", "x.txt"), alice.token)[0] == 400


@pytest.mark.parametrize("ranges", [f"bytes={len(BODY)}-", "bytes=999999999999-", "bytes=-0"])
def test_ranges_out_of_bounds_are_416(cluster: Any, alice: ApiClient, private: dict, ranges: str) -> None:
    status, data, headers = raw_get(cluster.api_url, files(private["uuid"], "cohort/genotypes.csv"), alice.token,
                                    Range=ranges)
    assert status == 416 and headers["content-range"] == f"bytes */{len(BODY)}" and BODY not in data


def test_a_token_scoped_away_from_collections_reads_nothing(cluster: Any, admin: ApiClient, alice: ApiClient,
                                                           private: dict) -> None:
    row = alice.api_client_authorizations.create({"scopes": ["GET /arvados/v1/users/current"]})
    narrow = f"v2/{row['uuid']}/{row['api_token']}"
    pdh = private["portable_data_hash"]
    for path in (drs(pdh), drs(pdh, "notes.txt", "/access/https"), files(private["uuid"], "notes.txt")):
        status, data, _ = raw_get(cluster.api_url, path, narrow)
        assert status == 403 and b"scopes" in data, path
    row = alice.api_client_authorizations.create({"scopes": ["GET /arvados/v1/collections/"]})
    reading = f"v2/{row['uuid']}/{row['api_token']}"  # what a container's runtime token can: read collections
    assert raw_get(cluster.api_url, files(private["uuid"], "notes.txt"), reading)[0] == 200
    assert raw_get(cluster.api_url, drs(pdh, "notes.txt"), reading)[0] == 200


def test_the_access_url_carries_only_the_callers_own_token(cluster: Any, alice: ApiClient, private: dict) -> None:
    import json

    status, data, _ = raw_get(cluster.api_url, drs(private["portable_data_hash"], "notes.txt", "/access/https"),
                              alice.token)
    assert status == 200 and json.loads(data)["headers"] == [f"Authorization: Bearer {alice.token}"]
    status, data, _ = raw_get(cluster.api_url, drs(private["portable_data_hash"], "notes.txt", "/access/s3"),
                              alice.token)
    assert status == 404


ACTIVE = {"x.html": b"<html><script>parent.stolen = document.cookie</script></html>",
          "x.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
          "x.xhtml": b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
          "x.js": b"alert(1)", "x.xml": b"<?xml-stylesheet href='x.xsl'?><a/>", "no-extension": b"<script>1</script>"}


def test_a_file_that_would_run_in_a_browser_is_an_attachment_of_bytes_and_sandboxed(
        cluster: Any, alice: ApiClient) -> None:
    """A tenant's x.html on the cluster's own origin (where the web UI's session lives) would run its
    script as that origin if rendered: it comes back as bytes to save, never sniffed, and sandboxed
    (no script, no origin) in case a browser rendered it all the same — as every file answer does."""
    collection = Collection(alice)
    for name, body in ACTIVE.items():
        collection.write(name, body)
    collection.write("notes.txt", b"<script>alert(1)</script>\n")
    collection.write("plot.png", b"\x89PNG\r\n\x1a\n")
    saved = collection.save_new("files a browser would run")
    for name, body in ACTIVE.items():
        for extra in ({}, {"Range": "bytes=0-3"}):
            status, data, headers = raw_get(cluster.api_url, files(saved["uuid"], name), alice.token, **extra)
            assert status in (200, 206) and body.startswith(data), (name, status, data)
            assert headers["content-type"] == "application/octet-stream", (name, headers)
            assert headers["content-disposition"].startswith("attachment; filename=\"" + name), (name, headers)
            assert headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in headers["content-security-policy"].split(";")[-1]
            assert "default-src 'none'" in headers["content-security-policy"]
    for name, media in (("notes.txt", "text/plain"), ("plot.png", "image/png")):  # passive types keep theirs
        status, _, headers = raw_get(cluster.api_url, files(saved["portable_data_hash"], name), alice.token)
        assert status == 200 and headers["content-type"] == media and "content-disposition" not in headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["content-security-policy"] == "default-src 'none'; sandbox"
