"""The list cache (backend/list_cache.py) never shows what a fresh query would not: two engines on
one SQLite file stand for two API processes, and every write through either — or straight through
a session — is seen by the next list on both; what one caller may list is never another's answer."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from archipelago.backend.interface import ListParams
from archipelago.backend.local import LocalBackend
from archipelago.db.models import Collection
from tests.support.backends import cluster_config, local_backend


@pytest.fixture
def pair(tmp_path):
    config = cluster_config("z1111", tmp_path)
    first = local_backend(config)
    second = local_backend(config)  # another API process on the same database
    admin = first.authenticate(config.system_root_token)
    return first, second, admin


def user(backend: LocalBackend, admin, name: str):  # type: ignore[no-untyped-def]
    record = backend.create(admin, "users", {"username": name, "email": f"{name}@example.org"})
    return backend.authenticate(backend.create_token(record["uuid"]))


def names(backend: LocalBackend, caller, **params) -> list[str]:  # type: ignore[no-untyped-def]
    page = backend.list(caller, "collections", ListParams(order=["name asc"], **params))
    return [item["name"] for item in page["items"]]


def test_writes_in_either_process_are_seen_at_once(pair):
    first, second, admin = pair
    alice = user(first, admin, "alice")
    assert names(first, alice) == names(second, alice) == []
    first.create(alice, "collections", {"name": "a", "manifest_text": ""})
    assert names(first, alice) == names(second, alice) == ["a"]  # cached empty answers are not served
    made = second.create(alice, "collections", {"name": "b", "manifest_text": ""})
    assert names(first, alice) == names(second, alice) == ["a", "b"]
    first.update(alice, "collections", made["uuid"], {"name": "c"})
    assert names(second, alice) == names(first, alice) == ["a", "c"]
    second.trash(alice, "collections", made["uuid"])
    assert names(first, alice) == ["a"]
    assert names(first, alice, include_trash=True) == ["a", "c"]


def test_a_write_outside_the_engine_is_seen_too(pair):
    """Any session of the engine's factory that writes bumps the version (not only the engine's own)."""
    first, second, admin = pair
    alice = user(first, admin, "alice")
    first.create(alice, "collections", {"name": "a", "manifest_text": ""})
    assert names(second, alice) == ["a"]
    with first.sessions() as session, session.begin():
        session.execute(update(Collection).values(name="renamed", modified_at=datetime.now(UTC)))
    assert names(second, alice) == names(first, alice) == ["renamed"]


def test_answers_are_per_caller_and_follow_sharing(pair):
    first, second, admin = pair
    alice, bob = user(first, admin, "alice"), user(first, admin, "bob")
    project = first.create(alice, "groups", {"name": "p", "group_class": "project"})["uuid"]
    first.create(alice, "collections", {"name": "inside", "manifest_text": "", "owner_uuid": project})
    query = {"filters": [["owner_uuid", "=", project]]}
    assert names(first, alice, **query) == ["inside"]
    assert names(first, bob, **query) == []  # the same query, another caller: not alice's answer
    link = second.create(alice, "links", {"link_class": "permission", "name": "can_read",
                                           "tail_uuid": bob.user_uuid, "head_uuid": project})
    assert names(first, bob, **query) == ["inside"]
    second.delete(alice, "links", link["uuid"])
    assert names(first, bob, **query) == []
    assert names(first, admin, **query) == ["inside"]


def test_a_cached_answer_is_a_copy(pair):
    first, _, admin = pair
    alice = user(first, admin, "alice")
    first.create(alice, "collections", {"name": "a", "manifest_text": ""})
    page = first.list(alice, "collections", ListParams())
    page["items"][0]["name"] = "changed by a caller"
    assert names(first, alice) == ["a"]
    again = first.list(alice, "collections", ListParams())
    assert again == first.list(alice, "collections", ListParams()) and again["items"][0]["name"] == "a"
