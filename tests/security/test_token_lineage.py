"""An attacker holding a token made with another token: it must never outlive that token (issue 17,
defects 7 and 8). In process: one cluster's engine, and a visitor's home played by a stub we
control, so each case says exactly what the home answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from archipelago.auth.identity import MAX_TOKEN_DEPTH
from archipelago.auth.remote import RemoteIdentity
from archipelago.backend.interface import Caller
from archipelago.db.models import ApiClientAuthorization
from archipelago.errors import ArchipelagoError, Unauthorized, Unavailable
from archipelago.formats.tokens import parse_v2, salt_token
from archipelago.resources.container_requests import DEFAULT_RUN_SECONDS, RUNTIME_TOKEN_SCOPES
from archipelago.times import now, parse_time
from tests.support.backends import Site, cluster_config, local_backend, single_cluster

REQUEST = {"command": ["true"], "container_image": None, "output_path": "/out", "cwd": "/out",
           "runtime_constraints": {"ram": 100 << 20, "vcpus": 1}, "priority": 1, "state": "Committed",
           "mounts": {"/out": {"kind": "tmp", "capacity": 1 << 20}}}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Site:
    return single_cluster(tmp_path_factory.mktemp("lineage"))


def token_of(record: dict[str, Any]) -> str:
    return f"v2/{record['uuid']}/{record['api_token']}"


def make_token(site: Site, caller: Caller, **attrs: Any) -> str:
    return token_of(site.backend.create(caller, "api_client_authorizations", attrs))


def refused(site: Site, token: str) -> int:
    with pytest.raises(ArchipelagoError) as info:
        site.backend.authenticate(token)
    return info.value.status


# ------------------------------------------------------------------------- one cluster
def test_a_token_made_with_a_token_that_expires_expires_no_later(site):
    soon = now() + timedelta(hours=1)
    alice = site.backend.authenticate(make_token(site, site.new_user("alice"), expires_at=soon.isoformat()))
    for asked in (None, (soon + timedelta(days=30)).isoformat()):
        child = site.backend.create(alice, "api_client_authorizations", {"expires_at": asked})
        assert parse_time(child["expires_at"]) == parse_time(soon.isoformat())  # clamped, not refused
        assert child["parent_uuid"] == alice.authorization_uuid
    earlier = soon - timedelta(minutes=30)
    child = site.backend.create(alice, "api_client_authorizations", {"expires_at": earlier.isoformat()})
    assert parse_time(child["expires_at"]) == parse_time(earlier.isoformat())
    # nor can it be pushed past its parent's expiry afterwards
    later = site.backend.update(alice, "api_client_authorizations", child["uuid"], {"expires_at": None})
    assert parse_time(later["expires_at"]) == parse_time(soon.isoformat())


def test_a_token_made_from_a_revoked_token_is_refused_down_every_generation(site):
    alice = site.new_user("alice")
    child = site.backend.authenticate(make_token(site, alice))
    grandchild = make_token(site, child)
    assert site.backend.authenticate(grandchild).user_uuid == alice.user_uuid
    site.backend.delete(alice, "api_client_authorizations", alice.authorization_uuid)
    assert refused(site, child.token) == 401
    assert refused(site, grandchild) == 401


def test_a_token_made_from_a_token_that_then_expires_is_refused(site):
    alice = site.new_user("alice")
    child = make_token(site, alice)
    site.backend.update(alice, "api_client_authorizations", alice.authorization_uuid, {"expires_at": now().isoformat()})
    assert refused(site, child) == 401


def test_an_expired_token_cannot_be_revived_to_bring_its_children_back(site):
    alice = site.new_user("alice")
    spare = site.backend.authenticate(site.local.create_token(alice.user_uuid))
    child = make_token(site, alice)
    site.backend.update(alice, "api_client_authorizations", alice.authorization_uuid, {"expires_at": now().isoformat()})
    with pytest.raises(ArchipelagoError) as info:
        site.backend.update(spare, "api_client_authorizations", alice.authorization_uuid, {"expires_at": None})
    assert info.value.status == 422
    assert refused(site, child) == 401


def test_the_secret_alone_is_held_to_the_same_lineage(site):
    alice = site.new_user("alice")
    child = make_token(site, alice)
    site.backend.delete(alice, "api_client_authorizations", alice.authorization_uuid)
    assert refused(site, parse_v2(child).secret) == 401  # the old bare-secret form


def test_a_container_token_and_what_it_made_die_when_the_container_ends(site):
    alice = site.new_user("alice")
    request = site.backend.create(alice, "container_requests", {**REQUEST, "command": ["echo", "lineage"],
                                                                "use_existing": False})
    uuid, admin = request["container_uuid"], site.admin
    site.backend.act(admin, "containers", uuid, "lock", "POST", {})
    site.backend.update(admin, "containers", uuid, {"state": "Running"})
    inside = site.backend.authenticate(token_of(site.backend.act(admin, "containers", uuid, "auth", "GET", {})))
    assert inside.container_uuid == uuid
    escaped = make_token(site, inside)  # what a container's program would try, and write to its output
    site.backend.update(admin, "containers", uuid, {"state": "Complete", "exit_code": 0})
    assert refused(site, inside.token) == 401
    assert refused(site, escaped) == 401


def test_a_runtime_token_a_container_has_issued_for_work_elsewhere_dies_with_it(site):
    alice = site.new_user("alice")
    request = site.backend.create(alice, "container_requests", {**REQUEST, "command": ["echo", "runtime"],
                                                                "use_existing": False})
    uuid = request["container_uuid"]
    site.backend.act(site.admin, "containers", uuid, "lock", "POST", {})
    inside = site.backend.authenticate(token_of(site.backend.act(site.admin, "containers", uuid, "auth", "GET", {})))
    # what the router asks for when the container submits a request to another cluster
    runtime = site.backend.delegate(inside, RUNTIME_TOKEN_SCOPES, DEFAULT_RUN_SECONDS)
    assert site.backend.authenticate(runtime).user_uuid == alice.user_uuid
    site.backend.update(site.admin, "containers", uuid, {"state": "Cancelled"})
    site.local.identity._callers.clear()  # the callers cache's bound (AUTH_CACHE_SECONDS), passed
    assert refused(site, runtime) == 401


def test_an_admins_container_cannot_mint_a_free_token_for_someone_else(site):
    boss = site.new_user("boss", admin=True)
    bob = site.new_user("bob")
    request = site.backend.create(boss, "container_requests", {**REQUEST, "command": ["echo", "admin"],
                                                               "use_existing": False})
    uuid = request["container_uuid"]
    site.backend.act(site.admin, "containers", uuid, "lock", "POST", {})
    inside = site.backend.authenticate(token_of(site.backend.act(site.admin, "containers", uuid, "auth", "GET", {})))
    for_bob = make_token(site, inside, owner_uuid=bob.user_uuid)
    site.backend.update(site.admin, "containers", uuid, {"state": "Cancelled"})
    assert refused(site, for_bob) == 401


def test_an_admins_grant_to_another_user_outlives_the_admins_session(site):
    boss = site.new_user("boss", admin=True)
    bob = site.new_user("bob")
    granted = site.backend.create(boss, "api_client_authorizations", {"owner_uuid": bob.user_uuid})
    assert granted["parent_uuid"] is None
    from_root = site.backend.create(site.admin, "api_client_authorizations", {})  # the root token has no row
    assert from_root["parent_uuid"] is None
    site.backend.delete(boss, "api_client_authorizations", boss.authorization_uuid)
    assert site.backend.authenticate(token_of(granted)).user_uuid == bob.user_uuid


def test_a_restricted_token_cannot_make_or_turn_itself_into_a_wider_one(site):
    alice = site.new_user("alice")
    scopes = ["GET /arvados/v1/collections/", "POST /arvados/v1/api_client_authorizations",
              "PUT /arvados/v1/api_client_authorizations/"]
    narrow = site.backend.authenticate(make_token(site, alice, scopes=scopes))
    for wider in (["all"], ["GET /arvados/v1/"], ["DELETE /arvados/v1/collections/"]):
        with pytest.raises(ArchipelagoError) as made:
            make_token(site, narrow, scopes=wider)
        with pytest.raises(ArchipelagoError) as widened:
            site.backend.update(narrow, "api_client_authorizations", narrow.authorization_uuid, {"scopes": wider})
        assert made.value.status == widened.value.status == 403
    by_default = site.backend.create(narrow, "api_client_authorizations", {})
    assert by_default["scopes"] == scopes  # what the maker has, not "all"
    narrower = ["GET /arvados/v1/collections/z1111-4zz18-000000000000000"]
    assert site.backend.create(narrow, "api_client_authorizations", {"scopes": narrower})["scopes"] == narrower


def test_chains_of_tokens_are_kept_short(site):
    caller = site.new_user("alice")
    for _ in range(MAX_TOKEN_DEPTH - 1):
        caller = site.backend.authenticate(make_token(site, caller))
    with pytest.raises(ArchipelagoError) as info:
        make_token(site, caller)
    assert info.value.status == 422


# ------------------------------------------------------------------------- a visitor's home
class StubHome:
    """z2222 as z1111's validator sees it: who each salted token is, or a refusal."""

    def __init__(self) -> None:
        self.answer: dict[str, Any] | Exception = {}
        self.asked = 0

    def knows(self, cluster_id: str) -> bool:
        return cluster_id == "z2222"

    def validate(self, cluster_id: str, token: str) -> RemoteIdentity:
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        uuid = parse_v2(token).uuid
        return RemoteIdentity({"uuid": uuid, "scopes": ["all"], "expires_at": None}, dict(self.answer))


@pytest.fixture
def visited(tmp_path) -> tuple[Site, StubHome]:
    home = StubHome()
    config = cluster_config("z1111", tmp_path, peers=("z2222",))
    config.remote_clusters["z2222"].activate_users = True
    local = local_backend(config, home)  # type: ignore[arg-type]  # a stub validator
    return Site("z1111", local, local, local.authenticate(config.system_root_token)), home


VISITOR = {"uuid": "z2222-tpzed-000000000000001", "email": "v@example.org", "is_active": True}
HOME_TOKEN = "v2/z2222-gj3su-000000000000001/" + "s" * 50  # the visitor's token at z2222


def visit(site: Site, home: StubHome) -> tuple[Caller, str]:
    """The visitor arrives with their token salted for z1111 and makes a z1111 token with it."""
    home.answer = dict(VISITOR)
    visitor = site.backend.authenticate(salt_token(HOME_TOKEN, "z1111"))
    return visitor, make_token(site, visitor)


def time_passes(site: Site) -> None:
    """The refresh period and the caller cache's bound, passed: what z1111 cached is due again."""
    with site.local.db.session() as session:
        session.execute(update(ApiClientAuthorization).where(ApiClientAuthorization.refreshes_at.is_not(None))
                        .values(refreshes_at=now() - timedelta(seconds=1)))
    site.local.identity._callers.clear()


def test_a_visitors_token_made_here_dies_when_home_revokes_the_token_it_came_from(visited):
    site, home = visited
    visitor, made_here = visit(site, home)
    assert site.backend.authenticate(made_here).user_uuid == VISITOR["uuid"]
    home.answer = Unauthorized("cluster z2222 rejected the token (401)")
    time_passes(site)
    assert refused(site, made_here) == 401
    with site.local.db.session() as session:  # the cached home token is forgotten
        assert session.get(ApiClientAuthorization, visitor.authorization_uuid) is None
    home.answer = dict(VISITOR)  # and stays dead even if the home token came back
    assert refused(site, made_here) == 401


def test_a_visitor_deactivated_at_home_is_inactive_here(visited):
    site, home = visited
    _, made_here = visit(site, home)
    home.answer = {**VISITOR, "is_active": False}  # an Arvados home answers for an inactive user
    time_passes(site)
    assert refused(site, made_here) == 401
    assert site.backend.get(site.admin, "users", VISITOR["uuid"])["is_active"] is False


def test_a_visitors_tokens_are_rechecked_at_home_only_when_due(visited):
    site, home = visited
    _, made_here = visit(site, home)
    asked = home.asked
    site.local.identity._callers.clear()
    site.backend.authenticate(made_here)
    assert home.asked == asked  # within the refresh period: no round trip
    time_passes(site)
    site.backend.authenticate(made_here)
    assert home.asked == asked + 1


def test_an_unreachable_home_is_not_taken_for_a_yes(visited):
    site, home = visited
    _, made_here = visit(site, home)
    home.answer = Unavailable("cluster z2222 is unreachable to validate the token")
    time_passes(site)
    assert refused(site, made_here) == 503


def test_the_bare_salted_secret_is_rechecked_at_home_too(visited):
    site, home = visited
    visit(site, home)
    bare = parse_v2(salt_token(HOME_TOKEN, "z1111")).secret
    home.answer = Unauthorized("cluster z2222 rejected the token (401)")
    time_passes(site)
    assert refused(site, bare) == 401


def test_a_grant_to_a_visitor_lives_only_while_their_home_vouches_for_them(visited):
    site, home = visited
    visit(site, home)
    granted = make_token(site, site.admin, owner_uuid=VISITOR["uuid"])  # no home token in its lineage
    assert site.backend.authenticate(granted).user_uuid == VISITOR["uuid"]
    home.answer = Unauthorized("cluster z2222 rejected the token (401)")
    time_passes(site)
    assert refused(site, granted) == 401


def test_a_wrong_secret_under_a_visitors_token_uuid_does_not_revoke_it(visited):
    site, home = visited
    visitor, made_here = visit(site, home)
    home.answer = Unauthorized("cluster z2222 rejected the token (401)")
    forged = f"v2/{visitor.authorization_uuid}/{'0' * 40}"
    assert refused(site, forged) == 401
    home.answer = dict(VISITOR)
    assert site.backend.authenticate(made_here).user_uuid == VISITOR["uuid"]
