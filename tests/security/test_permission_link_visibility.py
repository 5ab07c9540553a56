"""Who may see a permission link: its grantee and whoever manages its head — not another reader
of the head, not a stranger (as in Arvados, a reader does not learn who else was granted what)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archipelago.errors import ArchipelagoError
from tests.support.backends import Site, single_cluster


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return single_cluster(Path(tmp_path_factory.mktemp("link-visibility")))


def _grant(site: Site, owner, head: str, grantee: str, level: str) -> str:
    link = {"link_class": "permission", "name": level, "tail_uuid": grantee, "head_uuid": head}
    return str(site.backend.create(owner, "links", link)["uuid"])


def _sees(site: Site, caller, uuid: str) -> bool:
    try:
        return site.backend.get(caller, "links", uuid)["uuid"] == uuid
    except ArchipelagoError:
        return False


@pytest.mark.parametrize("head_kind", ["groups", "collections"])
def test_a_permission_link_is_seen_by_its_grantee_and_its_heads_managers_only(site: Site, head_kind: str) -> None:
    alice, bob, carol, mallory = (site.new_user(name) for name in ("alice", "bob", "carol", "mallory"))
    attrs = {"name": "shared", "group_class": "project"} if head_kind == "groups" else {"name": "shared"}
    head = site.backend.create(alice, head_kind, attrs)["uuid"]
    to_bob = _grant(site, alice, head, bob.user_uuid, "can_read")
    to_carol = _grant(site, alice, head, carol.user_uuid, "can_manage")
    assert _sees(site, alice, to_bob) and _sees(site, alice, to_carol)  # the owner manages the head
    assert _sees(site, bob, to_bob)  # the grantee
    assert not _sees(site, bob, to_carol)  # a reader of the head does not learn who else was granted
    assert _sees(site, carol, to_bob)  # a manager of the head, by a link of her own
    assert not _sees(site, mallory, to_bob) and not _sees(site, mallory, to_carol)  # a stranger
