"""An attacker holding a narrowly scoped token tries to turn it into a full-power one through a
container: a committed request gets a container acting as its committer with a token of scope
"all", and a request for another cluster gets a runtime token issued by the home. In process (one
cluster, and a federation of two through their real API apps): the rule is the same either way.

The rule: committing a container request, and being issued a token for work on other clusters,
need a token with scope "all" (403 saying so otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from archipelago.backend.interface import Caller, ListParams
from archipelago.errors import ArchipelagoError
from archipelago.resources.container_requests import DEFAULT_RUN_SECONDS, RUNTIME_TOKEN_SCOPES
from archipelago.sdk import ApiRequestError
from tests.support.backends import Site, federation, single_cluster

REQUEST = {"command": ["true"], "container_image": None, "output_path": "/out", "cwd": "/out",
           "runtime_constraints": {"ram": 64 << 20, "vcpus": 1, "API": True}, "priority": 1, "state": "Committed",
           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}, "use_existing": False}
ONLY_REQUESTS = ["POST /arvados/v1/container_requests"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("scoped")))


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Site]:
    return federation(Path(tmp_path_factory.mktemp("scoped-federation")))


def scoped(site: Site, user: Caller, scopes: list[str]) -> Caller:
    return site.backend.authenticate(site.local.create_token(user.user_uuid, scopes))


def status(call: Any, *args: Any, **kwargs: Any) -> tuple[int, str]:
    with pytest.raises(ArchipelagoError) as info:
        call(*args, **kwargs)
    return info.value.status, str(info.value)


def container_token(site: Site, request: dict[str, Any]) -> Caller:
    """The token the container of a committed request gets, as its executor would."""
    uuid = request["container_uuid"]
    site.backend.act(site.admin, "containers", uuid, "lock", "POST", {})
    auth = site.backend.act(site.admin, "containers", uuid, "auth", "GET", {})
    return site.backend.authenticate(f"v2/{auth['uuid']}/{auth['api_token']}")


def test_what_a_committed_request_would_give_a_narrow_token(site):
    """The stakes: a container's token acts as its committer with scope "all" — it can share the
    committer's private collection with anyone. That is what break 4 handed a narrow token."""
    alice, mallory = site.new_user("alice"), site.new_user("mallory")
    private = site.backend.create(alice, "collections", {"name": "private", "manifest_text": ""})
    inside = container_token(site, site.backend.create(alice, "container_requests", REQUEST))
    assert inside.scopes == ("all",) and inside.user_uuid == alice.user_uuid
    site.backend.create(inside, "links", {"link_class": "permission", "name": "can_manage",
                                          "tail_uuid": mallory.user_uuid, "head_uuid": private["uuid"]})


def test_a_narrow_token_cannot_commit_a_container_request(site):
    alice = site.new_user("alice")
    narrow = site.client(scoped(site, alice, ONLY_REQUESTS))
    with pytest.raises(ApiRequestError) as info:
        narrow.collections.list()
    assert info.value.status == 403  # what the token is for: not reading collections
    with pytest.raises(ApiRequestError) as info:
        narrow.container_requests.create(REQUEST)
    assert info.value.status == 403 and "scope 'all'" in info.value.message
    mine = site.backend.list(site.admin, "container_requests", _by(alice))
    assert mine["items"] == []  # nothing was made, so no container and no token


def test_a_narrow_token_cannot_commit_a_request_it_made_uncommitted(site):
    alice = site.new_user("alice")
    narrow = scoped(site, alice, [*ONLY_REQUESTS, "PUT /arvados/v1/container_requests/",
                                  "PATCH /arvados/v1/container_requests/"])
    draft = site.backend.create(narrow, "container_requests", {**REQUEST, "state": "Uncommitted"})
    code, message = status(site.backend.update, narrow, "container_requests", draft["uuid"], {"state": "Committed"})
    assert code == 403 and "scope 'all'" in message
    assert site.backend.get(alice, "container_requests", draft["uuid"])["state"] == "Uncommitted"
    # the same draft, committed with a full token, runs as usual
    done = site.backend.update(alice, "container_requests", draft["uuid"], {"state": "Committed"})
    assert done["state"] == "Committed" and done["container_uuid"]


def test_a_containers_own_token_still_commits_its_child_requests(site):
    alice = site.new_user("alice")
    parent = site.backend.create(alice, "container_requests", REQUEST)
    inside = container_token(site, parent)
    child = site.backend.create(inside, "container_requests", {**REQUEST, "command": ["echo", "child"]})
    assert child["state"] == "Committed" and child["requesting_container_uuid"] == parent["container_uuid"]


def test_a_narrow_token_is_issued_no_runtime_token(site):
    alice = site.new_user("alice")
    for scopes in (ONLY_REQUESTS, RUNTIME_TOKEN_SCOPES):  # a runtime token cannot make another either
        code, message = status(site.backend.delegate, scoped(site, alice, scopes), RUNTIME_TOKEN_SCOPES,
                               DEFAULT_RUN_SECONDS)
        assert code == 403 and "scope 'all'" in message
    runtime = site.backend.delegate(alice, RUNTIME_TOKEN_SCOPES, DEFAULT_RUN_SECONDS)  # a full token: as before
    assert site.backend.authenticate(runtime).user_uuid == alice.user_uuid


def test_a_narrow_token_cannot_send_a_request_to_another_cluster(sites):
    home, other = sites["z1111"], sites["z2222"]
    alice = home.new_user("alice")
    narrow = scoped(home, alice, ONLY_REQUESTS)
    code, message = status(home.backend.create, narrow, "container_requests", REQUEST, cluster_id="z2222")
    assert code == 403 and "scope 'all'" in message
    assert other.local.list(other.admin, "container_requests", _by(alice))["items"] == []
    # a full token still does: forwarded with its salted form, with a runtime token from home
    made = home.backend.create(alice, "container_requests", REQUEST, cluster_id="z2222")
    assert made["uuid"].startswith("z2222-") and made["state"] == "Committed"
    other.backend.act(other.admin, "containers", made["container_uuid"], "lock", "POST", {})
    auth = other.backend.act(other.admin, "containers", made["container_uuid"], "auth", "GET", {})
    assert auth["runtime_token"].startswith("v2/z1111-gj3su-")


def test_a_visitors_narrow_token_cannot_commit_where_it_visits(sites):
    """The scopes a visitor's home gives its token hold at the cluster it visits."""
    home, other = sites["z1111"], sites["z2222"]
    alice = home.new_user("alice")
    scopes = [*ONLY_REQUESTS, "GET /arvados/v1/users/current"]  # without it, its home cannot vouch for it
    visiting = other.backend.authenticate(scoped(home, alice, scopes).token)
    assert visiting.scopes == tuple(scopes)
    code, message = status(other.backend.create, visiting, "container_requests", REQUEST)
    assert code == 403 and "scope 'all'" in message


def _by(user: Caller) -> ListParams:
    return ListParams(filters=[["owner_uuid", "=", user.user_uuid]])
