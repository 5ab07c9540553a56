"""The resolver's service in process on a real SQLite store: pushes applied whole and in step,
answers ordered by liveness (never a dead site first), unpublished content told to member sites only."""

from __future__ import annotations

import time

import pytest

from archipelago.errors import ArchipelagoError
from archipelago.resolver.config import ResolverConfig
from archipelago.resolver.service import ResolverService
from archipelago.resolver.signing import Signed
from archipelago.resolver.store import OutOfStep, Store

PDH = "0cc175b9c0f1b6a831c399e269772661+1"


def service(tmp_path) -> ResolverService:
    config = ResolverConfig.model_validate({
        "database_url": f"sqlite:///{tmp_path / 'r.db'}",
        "defaults": {"live_window": 30, "stale_window": 60, "drop_after": 600},
        "sites": {site: {"url": f"https://{site}.test", "key": site * 8} for site in ("z1111", "z2222", "z3333")}})
    return ResolverService(config, Store(config.database_url))


def signed(site: str) -> Signed:
    return Signed(site, time.time(), f"n{time.monotonic_ns()}")


def record(site: str, n: int = 0) -> dict:
    return {"uuid": f"{site}-4zz18-{n:015d}", "kind": "collection", "name": "ds", "pdh": PDH, "size": 1,
            "residency": None}


def test_answers_put_live_sites_first_and_say_when_all_are_down(tmp_path):
    resolver = service(tmp_path)
    for site in ("z1111", "z2222"):
        resolver.push(signed(site), {"after": None})
        resolver.push(signed(site), {"after": 0, "to": 3, "identifiers": {"doi:10.1/x": [record(site)]}})
    resolver.poll_failed("z1111", "connection refused")  # asked after its last push: down
    answer = resolver.resolve("https://doi.org/10.1/X")
    assert [(h["site"], h["liveness"]) for h in answer["holders"]] == [("z2222", "live"), ("z1111", "down")]
    assert answer["all_down"] is False and answer["holders"][0]["routes"]["drs"].startswith("drs://z2222.test/")
    resolver.poll_failed("z2222", "timeout")
    answer = resolver.resolve("doi:10.1/x")
    assert answer["all_down"] is True and all(h["last_seen"] for h in answer["holders"])


def test_a_push_is_applied_in_step_and_withdrawals_remove_what_was_registered(tmp_path):
    resolver = service(tmp_path)
    assert resolver.push(signed("z1111"), {"after": None}) == {"last_seq": 0}
    with pytest.raises(OutOfStep) as info:  # the resolver lacks changes 1..5: the site must send from 0
        resolver.push(signed("z1111"), {"after": 5, "to": 9, "identifiers": {}})
    assert info.value.status == 409 and info.value.last_seq == 0
    resolver.push(signed("z1111"), {"after": 0, "to": 4, "identifiers": {"doi:10.1/x": [record("z1111")]},
                                    "contents": {PDH: True}})
    assert resolver.push(signed("z1111"), {"after": 2, "to": 4})["last_seq"] == 4  # a re-sent overlap is harmless
    resolver.push(signed("z1111"), {"after": 4, "to": 7, "identifiers": {"doi:10.1/x": []}, "contents": {PDH: False}})
    assert resolver.resolve("doi:10.1/x")["holders"] == []
    assert resolver.holders(signed("z2222"), PDH)["holders"] == []


def test_a_site_cannot_register_another_sites_objects_or_malformed_identifiers(tmp_path):
    resolver = service(tmp_path)
    for body in [{"after": 0, "to": 1, "identifiers": {"doi:10.1/x": [record("z2222")]}},
                 {"after": 0, "to": 1, "identifiers": {"doi:11.1/x": [record("z1111")]}},
                 {"after": 0, "to": 1, "identifiers": {"DOI:10.1/X": [record("z1111")]}},  # not in normal form
                 {"after": 0, "to": 1, "contents": {"nope": True}}, {"after": 3, "to": 1}, []]:
        with pytest.raises(ArchipelagoError) as info:
            resolver.push(signed("z1111"), body)
        assert info.value.status in (400, 422)


def test_content_holdings_are_told_to_member_sites_live_first_with_what_the_index_covers(tmp_path):
    resolver = service(tmp_path)
    for site in ("z1111", "z3333"):
        resolver.push(signed(site), {"after": 0, "to": 1, "contents": {PDH: True}})
    resolver.poll_failed("z1111", "refused")
    answer = resolver.holders(signed("z2222"), PDH)
    assert answer["holders"] == [{"site": "z3333", "liveness": "live"}, {"site": "z1111", "liveness": "down"}]
    assert [s["site"] for s in resolver.sites()] == ["z1111", "z2222", "z3333"]  # what it covers
    assert resolver.resolve(f"keep:{PDH}")["holders"] == []  # unpublished content: not for anyone who asks


def test_liveness_and_positions_survive_a_restart(tmp_path):
    resolver = service(tmp_path)
    resolver.push(signed("z1111"), {"after": 0, "to": 2, "identifiers": {"doi:10.1/x": [record("z1111")]}})
    resolver.save()
    again = service(tmp_path)
    assert again.last_seq["z1111"] == 2 and again.verdict("z1111").status == "live"
    assert [h["site"] for h in again.resolve("doi:10.1/x")["holders"]] == ["z1111"]
