"""File names a tenant chooses, against the headers the file-download endpoint (and the web UI's
downloads through it) answer with, on a real cluster: a name holding CR LF and a header of its own
(response splitting, a cookie set on the cluster's origin), quotes and semicolons, and names outside
Latin-1. Each is downloaded by its owner, whole, with no header but ours. And Range headers a
client chooses: a number of 5,000 digits (ignored, as RFC 9110 lets a server do: the whole file)."""

from __future__ import annotations

import http.client
import ssl
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from archipelago.sdk import ApiClient, Collection
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration
NAMES = ["x\r\nSet-Cookie: archi_session_z1111=planted\r\nX-Planted: 1.txt", 'a"b;c=d.txt', "日本語.csv",
         "naïve €.txt", "tab\there.txt"]


@pytest.fixture(scope="module")
def alice(cluster: Any) -> ApiClient:
    return new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "alice")


@pytest.fixture(scope="module")
def odd(alice: ApiClient) -> dict[str, Any]:
    collection = Collection(alice)
    for n, name in enumerate(NAMES):
        collection.write(f"d/{name}", b"file %d\n" % n)
    return collection.save_new("odd names")


@pytest.mark.parametrize("n", range(len(NAMES)))
def test_a_file_name_sets_no_header_and_does_not_break_the_download(cluster: Any, alice: ApiClient, odd: dict,
                                                                     n: int) -> None:
    where = urlsplit(cluster.api_url)
    connection = http.client.HTTPSConnection(where.hostname or "", where.port,
                                             context=ssl._create_unverified_context())
    connection.request("GET", f"/arvados/v1/collections/{odd['uuid']}/files/d/{quote(NAMES[n], safe='')}",
                       headers={"Authorization": f"Bearer {alice.token}"})
    response = connection.getresponse()
    body, headers = response.read(), [name.lower() for name, _ in response.getheaders()]
    connection.close()
    assert "set-cookie" not in headers and "x-planted" not in headers
    if "\n" in NAMES[n]:  # no route takes a path holding a line break: a 404 that sets nothing
        assert response.status == 404
    else:  # before: a name outside Latin-1 was a 500 (the ETag header could not be encoded)
        assert (response.status, body) == (200, b"file %d\n" % n)


@pytest.mark.parametrize("asked", ["bytes=" + "9" * 5000 + "-", "bytes=0-" + "1" * 5000])
def test_a_range_no_server_would_mean_is_ignored_not_a_500(cluster: Any, alice: ApiClient, odd: dict,
                                                            asked: str) -> None:
    where = urlsplit(cluster.api_url)
    connection = http.client.HTTPSConnection(where.hostname or "", where.port,
                                             context=ssl._create_unverified_context())
    connection.putrequest("GET", f"/arvados/v1/collections/{odd['uuid']}/files/d/{quote(NAMES[1], safe='')}")
    connection.putheader("Authorization", f"Bearer {alice.token}")
    connection.putheader("Range", asked)
    connection.endheaders()
    response = connection.getresponse()
    assert (response.status, response.read()) == (200, b"file 1\n")  # before: a 500 (int() of 5,000 digits)
    connection.close()
