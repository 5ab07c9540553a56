"""A stranger who can reach a keepstore tries to use it as free storage with a made-up token (or
one that was revoked or expired): nothing is stored, and the body is not even read. Against a
real cluster (`archi cluster init` + `up`: keepstore in the API's process, validating with the
cluster's own identity code) and a keepstore run on its own for that cluster (asking its API);
visitors' salted tokens in process, on a federation of two."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from archipelago.keepstore.app import Keepstore, ServerThread
from archipelago.keepstore.store import BlockStore
from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess, KeepstoreProcess
from archipelago.sdk import ApiClient
from archipelago.times import now
from tests.support.backends import federation
from tests.support.clusters import new_user
from tests.support.keep_http import errors, get, http, put

pytestmark = pytest.mark.integration

MADE_UP = "v2/z1111-gj3su-000000000000009/anything-at-all-really-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterProcess]:
    directory = tmp_path_factory.mktemp("keep-tokens")
    init_cluster(directory, "z1111")
    with ClusterProcess(directory) as process:
        yield process


@pytest.fixture(scope="module")
def standalone(cluster: ClusterProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeepstoreProcess]:
    """`archi keepstore --config` with the cluster's configuration and a volume of its own."""
    work = tmp_path_factory.mktemp("standalone-keep")
    config = cluster.config.model_copy(deep=True)
    config.volumes = [config.volumes[0].model_copy(update={"root": work / "vol"})]
    with KeepstoreProcess(config, work) as process:
        yield process


def stored(url: str, root_token: str, data: bytes) -> bool:
    resp = http.request("GET", f"{url}/index", headers={"Authorization": f"Bearer {root_token}"})
    assert resp.status == 200
    return hashlib.md5(data).hexdigest() in resp.data.decode()


def token_of(record: dict[str, Any]) -> str:
    return f"v2/{record['uuid']}/{record['api_token']}"


def refused_before_the_body(url: str, token: str) -> bytes:
    """A PUT announcing a whole block that never sends it: the answer must come anyway."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(f"PUT /{'0' * 32} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {64 << 20}\r\n"
                     f"Authorization: Bearer {token}\r\n\r\n".encode())
        return conn.recv(4096).split(b"\r\n")[0]


@pytest.fixture(params=["in the cluster", "on its own"])
def keepstore(request: pytest.FixtureRequest, cluster: ClusterProcess) -> tuple[str, str]:
    """(url, root token) of each way keepstore runs for the cluster."""
    if request.param == "in the cluster":
        return cluster.keep_url, cluster.config.system_root_token
    process = request.getfixturevalue("standalone")
    return process.url, process.config.system_root_token


def test_a_made_up_token_stores_nothing(keepstore):
    url, root = keepstore
    data = os.urandom(1000)
    resp = put(url, data, token=MADE_UP)
    assert resp.status == 401, resp.data
    for token in ("anything-at-all", MADE_UP.replace("z1111", "zzzzz")):  # not even v2; another cluster's
        assert put(url, data, token=token).status == 401
    assert put(url, data, token=None).status == 401
    assert not stored(url, root, data)
    large = os.urandom(2 << 20)  # a body keepstore would read off the socket itself (keepstore/receive.py)
    assert put(url, large, token=MADE_UP).status == 401
    assert not stored(url, root, large)
    assert b" 401 " in refused_before_the_body(url, MADE_UP)


def test_a_users_token_stores_and_reads_its_block(keepstore, cluster):
    url, root = keepstore
    alice = new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "alice")
    data = os.urandom(1000)
    resp = put(url, data, token=alice.token)
    assert resp.status == 200, resp.data
    assert get(url, resp.data.decode().strip(), token=alice.token).data == data
    assert put(url, b"root too", token=root).status == 200  # the system root token is valid


def test_a_revoked_or_expired_token_stores_nothing(keepstore, cluster):
    url, root = keepstore
    admin = ApiClient(cluster.api_url, cluster.admin_token, insecure=True)
    alice = new_user(admin, "alice")
    revoked = alice.api_client_authorizations.create({})
    alice.api_client_authorizations.delete(revoked["uuid"])
    expired = alice.api_client_authorizations.create({})
    alice.api_client_authorizations.update(expired["uuid"], {"expires_at": now().isoformat()})
    for token in (token_of(revoked), token_of(expired)):
        data = os.urandom(1000)
        resp = put(url, data, token=token)
        assert resp.status == 401, resp.data
        assert not stored(url, root, data)


def test_in_the_cluster_a_revocation_stops_puts_at_once(cluster):
    alice = new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "alice")
    spare = alice.api_client_authorizations.create({})
    assert put(cluster.keep_url, b"before", token=token_of(spare)).status == 200  # validated, cached
    alice.api_client_authorizations.delete(spare["uuid"])
    assert put(cluster.keep_url, b"after", token=token_of(spare)).status == 401


def test_a_keepstore_that_cannot_ask_its_api_stores_nothing_for_users(cluster, tmp_path):
    """Unreachable is not a yes: 503 (clients retry), and the root token still works."""
    config = cluster.config.model_copy(deep=True)
    config.volumes = [config.volumes[0].model_copy(update={"root": tmp_path / "vol"})]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        config.api = config.api.model_copy(update={"listen": f"127.0.0.1:{closed.getsockname()[1]}"})
    alice = new_user(ApiClient(cluster.api_url, cluster.admin_token, insecure=True), "alice")
    with KeepstoreProcess(config, tmp_path) as process:
        resp = put(process.url, b"x", token=alice.token)
        assert resp.status == 503 and "unreachable" in errors(resp)
        assert put(process.url, b"x", token=config.system_root_token).status == 200


def test_a_visitors_salted_token_stores_blocks_and_an_impostor_does_not(tmp_path: Path) -> None:
    """A visitor's token salted for the cluster is validated at their home, as at the API."""
    from archipelago.formats.tokens import salt_token

    sites = federation(tmp_path)
    home, here = sites["z1111"], sites["z2222"]
    alice = home.new_user("alice")
    salted = salt_token(alice.token, "z2222")
    config = here.local.config
    keepstore = Keepstore(config, BlockStore.from_config(config), authenticate=here.local.authenticate)
    with ServerThread(keepstore.app()) as server:
        resp = put(server.url, b"a visitor's block", token=salted)
        assert resp.status == 200, resp.data
        assert get(server.url, resp.data.decode().strip(), token=salted).data == b"a visitor's block"
        assert put(server.url, b"impostor", token=salted[:-4] + "0000").status == 401  # its home says no
        # their full token: salted here before it is checked, as the API does
        assert put(server.url, b"full token", token=alice.token).status == 200
