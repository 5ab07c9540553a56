"""Issue 17, defects 7 and 8, against real servers: a federation of two clusters on loopback whose
clusters re-validate visitors' tokens every REFRESH s, each with its dispatcher running containers.
The attacker holds a token made with another token and keeps using it after that one is revoked."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from typing import Any

import pytest

from archipelago.formats.tokens import salt_token
from archipelago.sdk import ApiClient, ApiRequestError, Collection
from tests.support.clusters import REFRESH, new_user, running_federation
from tests.support.compute import submit, wait_final

pytestmark = pytest.mark.integration

# what may pass before a revocation is seen: the refresh period, then the callers cache (bounded by
# the same period), with room for a slow machine — a bound to wait for, not a measurement
DEADLINE = 2 * REFRESH + 10


@pytest.fixture(scope="module")
def federation(tmp_path_factory):
    with running_federation(tmp_path_factory.mktemp("lineage"), 2) as federation:
        yield federation


def token_of(record: dict[str, Any]) -> str:
    return f"v2/{record['uuid']}/{record['api_token']}"


def status_of(call: Callable[[], Any]) -> int:
    try:
        call()
    except ApiRequestError as exc:
        return exc.status
    return 200


def wait_refused(call: Callable[[], Any], timeout: float = DEADLINE) -> None:
    """Wait (with a deadline) until `call` is refused as unauthenticated."""
    deadline = time.monotonic() + timeout
    while (status := status_of(call)) != 401:
        if time.monotonic() > deadline:
            raise AssertionError(f"still answered {status} after {timeout} s")
        time.sleep(0.2)


def visit(federation: dict[str, Any]) -> tuple[ApiClient, str, ApiClient]:
    """A z2222 user salts their token for z1111 and makes a z1111 token with it (expires_at null,
    scopes all): the user at home, their home token's uuid, and the z1111 token as a client."""
    home, visited = federation["z2222"], federation["z1111"]
    alice = new_user(home, "alice")
    salted = ApiClient(visited.base, salt_token(alice.token, "z1111"), insecure=True)
    made = salted.api_client_authorizations.create({})
    assert made["uuid"].startswith("z1111-") and made["expires_at"] is None and made["scopes"] == ["all"]
    made_here = ApiClient(visited.base, token_of(made), insecure=True)
    assert made_here.collections.create({"name": "before", "manifest_text": ""})["uuid"].startswith("z1111-")
    assert made_here.users.current()["is_active"] is True
    return alice, alice.token.split("/")[1], made_here


def test_a_visitors_token_made_here_dies_when_home_deactivates_them_and_deletes_its_token(federation):
    home = federation["z2222"]
    alice, home_token, made_here = visit(federation)
    home.users.update(alice.users.current()["uuid"], {"is_active": False})
    home.api_client_authorizations.delete(home_token)
    assert status_of(alice.users.current) == 401  # home answers 401
    wait_refused(made_here.users.current)
    assert status_of(lambda: made_here.collections.create({"name": "after", "manifest_text": ""})) == 401


def test_a_visitor_deactivated_at_home_is_refused_even_with_their_token_kept(federation):
    home, visited = federation["z2222"], federation["z1111"]
    alice, _, made_here = visit(federation)
    salted = ApiClient(visited.base, salt_token(alice.token, "z1111"), insecure=True)
    home.users.update(alice.users.current()["uuid"], {"is_active": False})
    wait_refused(made_here.users.current)
    assert status_of(lambda: made_here.collections.create({"name": "after", "manifest_text": ""})) == 401
    assert status_of(salted.users.current) == 401  # the home token itself, salted, too


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_a_token_a_container_made_with_its_own_token_dies_with_the_container(federation):
    cluster = federation["z1111"]
    alice = new_user(cluster, "alice")
    # the container's program makes a token with its own (no expiry asked), uses it once, and leaves it
    script = (
        "import json, os, ssl, urllib.request as u\n"
        "api = 'https://' + os.environ['ARVADOS_API_HOST'] + '/arvados/v1/'\n"
        "ctx = ssl._create_unverified_context()\n"
        "def call(method, path, token, body=None):\n"
        "    data = json.dumps(body).encode() if body is not None else None\n"
        "    req = u.Request(api + path, data, {'Authorization': 'Bearer ' + token,\n"
        "                                       'Content-Type': 'application/json'}, method=method)\n"
        "    return json.load(u.urlopen(req, context=ctx))\n"
        "made = call('POST', 'api_client_authorizations', os.environ['ARVADOS_API_TOKEN'],\n"
        "            {'api_client_authorization': {}})\n"
        "token = 'v2/%s/%s' % (made['uuid'], made['api_token'])\n"
        "json.dump({'made': made, 'me': call('GET', 'users/current', token)}, open('made.json', 'w'))\n"
    )
    request = submit(alice, ["python3", "-c", script],
                     runtime_constraints={"API": True, "ram": 256 << 20, "vcpus": 1})
    done = wait_final(alice, request["uuid"], timeout=120)
    container = alice.containers.get(done["container_uuid"])
    logs = Collection(alice, done["log_uuid"])
    log = "".join(logs.read(path).decode() for path, _ in logs.files())
    assert (container["state"], container["exit_code"]) == ("Complete", 0), log
    found = json.loads(Collection(alice, done["output_uuid"]).read("made.json"))
    made = found["made"]
    assert found["me"]["uuid"] == alice.users.current()["uuid"]  # it worked while the container ran
    escaped = ApiClient(cluster.base, token_of(made), insecure=True)
    wait_refused(escaped.users.current)
    assert status_of(lambda: escaped.collections.create({"name": "after", "manifest_text": ""})) == 401
    auth = cluster.request("GET", f"containers/{container['uuid']}/auth")
    assert status_of(ApiClient(cluster.base, token_of(auth), insecure=True).users.current) == 401
    assert made.get("parent_uuid") == auth["uuid"]
    assert made["expires_at"] is not None  # it asked for none: bound by the container token's
