"""A visitor's first requests, all at once: the cluster they visit mirrors their user (and their
token) once, whichever request gets there first, and every request succeeds — on SQLite and on
PostgreSQL (the cluster visited runs on each; the visitor's home on SQLite)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from archipelago.config import RemoteClusterConfig, dump_config, load_config
from archipelago.files import write_private
from archipelago.formats.tokens import salt_token
from archipelago.run.cluster import init_cluster
from archipelago.run.processes import ClusterProcess
from archipelago.sdk import ApiClient
from tests.support.clusters import new_user

pytestmark = pytest.mark.integration
AT_ONCE = 12  # concurrent first requests per visitor


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, database_url: str):
    """z1111 (the visitors' home, SQLite) and z2222 (visited, on `database_url`), each a remote of the other."""
    root = tmp_path_factory.mktemp("pair")
    home, visited = init_cluster(root / "z1111", "z1111"), init_cluster(root / "z2222", "z2222", database_url)
    for this, other in ((home, visited), (visited, home)):
        config = load_config(this.config_path)
        config.remote_clusters = {other.config.cluster_id: RemoteClusterConfig(
            host=other.config.api.url.split("://", 1)[1], insecure=True)}
        write_private(this.config_path, dump_config(config))
    with ClusterProcess(Path(home.config_path).parent) as home_process, \
            ClusterProcess(Path(visited.config_path).parent) as visited_process:
        yield (ApiClient(home_process.api_url, home.admin_token, insecure=True),
               ApiClient(visited_process.api_url, visited.admin_token, insecure=True))


def at_once(calls: list) -> list:
    """Each call in its own thread, released together; what each returned or raised."""
    start = threading.Barrier(len(calls))

    def run(call):  # type: ignore[no-untyped-def]
        start.wait()
        try:
            return call()
        except Exception as exc:
            return exc  # reported by the assertion, not swallowed

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_concurrent_first_requests_of_a_visitor_all_succeed(pair):
    home, visited = pair
    for attempt in range(3):  # a fresh visitor each time: every round is a first arrival
        visitor = new_user(home, f"visitor{attempt}")
        me = visitor.users.current()["uuid"]
        token = salt_token(visitor.token, "z2222")
        clients = [ApiClient(visited.base, token, insecure=True) for _ in range(AT_ONCE)]
        calls = [client.users.current if n % 2 else client.collections.list for n, client in enumerate(clients)]
        answers = at_once(calls)
        failures = [a for a in answers if isinstance(a, Exception)]
        assert not failures, f"{len(failures)} of {AT_ONCE} first requests failed: {failures[:3]}"
        assert {a["uuid"] for a in answers[1::2]} == {me}
        assert all(a["items"] == [] for a in answers[0::2])
        mirrored = visited.users.list(filters=[["uuid", "=", me]])["items"]
        assert [u["uuid"] for u in mirrored] == [me] and mirrored[0]["is_active"]


def test_concurrent_first_requests_with_different_tokens_of_one_visitor(pair):
    """Two of the visitor's tokens arriving together: one user mirrored, both tokens accepted."""
    home, visited = pair
    visitor = new_user(home, "twotokens")
    me = visitor.users.current()["uuid"]
    other = home.api_client_authorizations.create({"owner_uuid": me})
    tokens = [visitor.token, f"v2/{other['uuid']}/{other['api_token']}"]
    clients = [ApiClient(visited.base, salt_token(tokens[n % 2], "z2222"), insecure=True) for n in range(AT_ONCE)]
    answers = at_once([client.users.current for client in clients])
    failures = [a for a in answers if isinstance(a, Exception)]
    assert not failures, f"{len(failures)} of {AT_ONCE} first requests failed: {failures[:3]}"
    assert {a["uuid"] for a in answers} == {me}
