"""The resolver's index in memory (resolver/index.py) against its database: loaded, it answers what
SQL answers; every push after that (registrations added, replaced, withdrawn, PDHs held and let go)
changes the next answer; what commits while it loads is not lost; a refused push changes nothing; a
site going down changes the next answer's order as before. On SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import sqlite3
import time

import pytest

from archipelago.errors import ArchipelagoError
from archipelago.resolver.config import ResolverConfig
from archipelago.resolver.index import MemoryIndex
from archipelago.resolver.service import ResolverService
from archipelago.resolver.signing import Signed
from archipelago.resolver.store import ALL_CONTENTS_SQL, ALL_REGISTRATIONS_SQL, Store

SITES = ("z1111", "z2222", "z3333")
PDHS = [f"{n:032x}+{n + 1}" for n in range(6)]
IDS = [f"doi:10.1/d{n}" for n in range(8)]


def service(tmp_path, database_url: str | None = None) -> ResolverService:
    config = ResolverConfig.model_validate({
        "database_url": database_url or f"sqlite:///{tmp_path / 'r.db'}",
        "defaults": {"live_window": 30, "stale_window": 60, "drop_after": 600},
        "sites": {site: {"url": f"https://{site}.test", "key": site * 8} for site in SITES}})
    resolver = ResolverService(config, Store(config.database_url))
    for site in SITES:
        resolver.push(signed(site), {"after": None})
    return resolver


def signed(site: str) -> Signed:
    return Signed(site, time.time() + time.monotonic_ns() * 1e-15, f"n{time.monotonic_ns()}")


def record(site: str, n: int, pdh: str = PDHS[0]) -> dict:
    return {"uuid": f"{site}-4zz18-{n:015d}", "kind": "collection", "name": f"ds{n}", "pdh": pdh, "size": n,
            "residency": None}


class Pusher:
    def __init__(self, resolver: ResolverService):
        self.resolver, self.seq = resolver, dict.fromkeys(SITES, 0)

    def __call__(self, site: str, identifiers: dict | None = None, contents: dict | None = None) -> None:
        self.resolver.push(signed(site), {"after": self.seq[site], "to": self.seq[site] + 1,
                                          "identifiers": identifiers or {}, "contents": contents or {}})
        self.seq[site] += 1


def from_sql(store: Store) -> tuple[dict, dict]:
    """What the database says, through the same Store methods with no index."""
    plain = Store(store.engine.url.render_as_string(hide_password=False))
    return ({i: plain.registrations(i) for i in IDS}, {p: plain.holders(p) for p in PDHS})


def from_index(store: Store) -> tuple[dict, dict]:
    assert store.index is not None and store.index.ready
    return ({i: store.registrations(i) for i in IDS}, {p: store.holders(p) for p in PDHS})


def test_loaded_it_answers_as_the_database_does_and_follows_every_push(tmp_path):
    resolver = service(tmp_path)
    push = Pusher(resolver)
    push("z2222", {IDS[0]: [record("z2222", 2), record("z2222", 1)]}, {PDHS[0]: True, PDHS[1]: True})
    push("z1111", {IDS[0]: [record("z1111", 1)], IDS[1]: [record("z1111", 3, PDHS[2])]}, {PDHS[0]: True})
    resolver.store.load_index()
    assert from_index(resolver.store) == from_sql(resolver.store)
    assert [r["uuid"] for r in resolver.store.registrations(IDS[0])] == [
        "z1111-4zz18-000000000000001", "z2222-4zz18-000000000000001", "z2222-4zz18-000000000000002"]

    push("z2222", {IDS[0]: []}, {PDHS[0]: False})  # withdrawn, let go
    assert [h["site"] for h in resolver.resolve(IDS[0])["holders"]] == ["z1111"]
    assert resolver.holders(signed("z3333"), PDHS[0])["holders"] == [{"site": "z1111", "liveness": "live"}]
    push("z1111", {IDS[1]: [record("z1111", 4, PDHS[3])]})  # replaced
    assert [h["pdh"] for h in resolver.resolve(IDS[1])["holders"]] == [PDHS[3]]
    push("z3333", {IDS[1]: [record("z3333", 5)]})  # another site
    assert sorted(h["site"] for h in resolver.resolve(IDS[1])["holders"]) == ["z1111", "z3333"]
    assert from_index(resolver.store) == from_sql(resolver.store)


def test_a_site_going_down_changes_the_next_answer(tmp_path):
    resolver = service(tmp_path)
    push = Pusher(resolver)
    push("z1111", {IDS[0]: [record("z1111", 1)]})
    push("z2222", {IDS[0]: [record("z2222", 1)]})
    resolver.store.load_index()
    first = [h["site"] for h in resolver.resolve(IDS[0])["holders"]]
    resolver.poll_failed(first[0], "connection refused")
    answer = resolver.resolve(IDS[0])["holders"]
    assert [(h["site"], h["liveness"]) for h in answer] == [(first[1], "live"), (first[0], "down")]


def test_what_commits_while_it_loads_is_not_lost(tmp_path):
    resolver = service(tmp_path)
    push = Pusher(resolver)
    push("z1111", {IDS[0]: [record("z1111", 1)], IDS[1]: [record("z1111", 2)]}, {PDHS[0]: True})
    db = sqlite3.connect(tmp_path / "r.db")
    registrations, contents = db.execute(ALL_REGISTRATIONS_SQL).fetchall(), db.execute(ALL_CONTENTS_SQL).fetchall()
    db.close()
    # the loader has read the rows above; these commit before it is done
    resolver.store.index = MemoryIndex()
    push("z1111", {IDS[1]: []}, {PDHS[0]: False, PDHS[1]: True})
    push("z2222", {IDS[0]: [record("z2222", 7)]})
    assert not resolver.store.index.ready and resolver.store.registrations(IDS[1]) == []  # SQL meanwhile
    resolver.store.index.load(registrations, contents)
    assert from_index(resolver.store) == from_sql(resolver.store)
    assert resolver.store.registrations(IDS[1]) == [] and resolver.store.holders(PDHS[1]) == ["z1111"]


def test_a_refused_push_changes_nothing(tmp_path):
    resolver = service(tmp_path)
    push = Pusher(resolver)
    push("z1111", {IDS[0]: [record("z1111", 1)]})
    resolver.store.load_index()
    with pytest.raises(ArchipelagoError):  # the same object twice: refused whole
        resolver.push(signed("z1111"), {"after": 1, "to": 2, "identifiers": {IDS[0]: [], IDS[2]: [
            record("z1111", 9), record("z1111", 9)]}})
    with pytest.raises(ArchipelagoError):  # out of step
        resolver.push(signed("z1111"), {"after": 5, "to": 6, "identifiers": {IDS[0]: []}})
    assert [h["uuid"] for h in resolver.resolve(IDS[0])["holders"]] == ["z1111-4zz18-000000000000001"]
    assert resolver.resolve(IDS[2])["holders"] == []
    assert from_index(resolver.store) == from_sql(resolver.store)


def test_random_pushes_keep_it_equal_to_the_database(tmp_path):
    resolver = service(tmp_path)
    push = Pusher(resolver)
    rng = random.Random(19)
    resolver.store.load_index()
    for step in range(120):
        site = rng.choice(SITES)
        identifiers = {rng.choice(IDS): [record(site, rng.randrange(4), rng.choice(PDHS))
                                         for _ in range(rng.randrange(3))] for _ in range(rng.randrange(3))}
        identifiers = {i: list({r["uuid"]: r for r in records}.values()) for i, records in identifiers.items()}
        contents = {rng.choice(PDHS): rng.random() < 0.6 for _ in range(rng.randrange(3))}
        push(site, identifiers, contents)
        if step % 10 == 0:
            assert from_index(resolver.store) == from_sql(resolver.store), step
    assert from_index(resolver.store) == from_sql(resolver.store)


def test_on_postgresql_it_loads_and_follows_pushes_as_on_sqlite(tmp_path, postgres_server):
    resolver = service(tmp_path, postgres_server.create_database(f"r_{time.monotonic_ns()}"))
    push = Pusher(resolver)
    push("z2222", {IDS[0]: [record("z2222", 2), record("z2222", 1)]}, {PDHS[0]: True, PDHS[1]: True})
    push("z1111", {IDS[0]: [record("z1111", 1)], IDS[1]: [record("z1111", 3, PDHS[2])]}, {PDHS[0]: True})
    resolver.store.load_index()
    assert resolver.store.inline_reads and from_index(resolver.store) == from_sql(resolver.store)
    push("z2222", {IDS[0]: []}, {PDHS[0]: False})
    push("z3333", {IDS[1]: [record("z3333", 5)]}, {PDHS[2]: True})
    assert from_index(resolver.store) == from_sql(resolver.store)
    assert [h["site"] for h in resolver.resolve(IDS[0])["holders"]] == ["z1111"]

