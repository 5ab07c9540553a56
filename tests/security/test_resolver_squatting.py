"""A hostile site (or any tenant who may write a collection: publishing an identifier needs only
that) tries to take over launches of a dataset it does not hold, against a real resolver process:
it publishes the victim's DOI on its own, different data (a launch would pick it for being home or
seen last), a `keep:PDH` identifier on other content, and records a launch trusts (kind, PDH) in
shapes they cannot have."""

from __future__ import annotations

import json

import orjson
import pytest
import urllib3

from archipelago.errors import Unprocessable
from archipelago.resolver.launch import choose
from archipelago.resolver.lookup import resolve
from archipelago.resolver.signing import sign
from tests.support.resolver import push_sites, resolver_process

KEYS = {"z1111": "a" * 32, "z2222": "b" * 32}
GENUINE = "0cc175b9c0f1b6a831c399e269772661+1"  # what the DOI's publisher holds at z1111
OTHER = "92eb5ffee6ae2fec3ad71c777531578f+1"  # what the squatter holds at z2222
http = urllib3.PoolManager(retries=False)


@pytest.fixture(scope="module")
def resolver(tmp_path_factory):
    with resolver_process(tmp_path_factory.mktemp("resolver"), push_sites(KEYS)) as process:
        seq = {site: 0 for site in KEYS}
        process.push = lambda site, identifiers: _push(process.url, site, identifiers, seq)  # type: ignore[attr-defined]
        yield process


def _push(url: str, site: str, identifiers: dict, seq: dict[str, int]) -> int:
    raw = orjson.dumps({"after": seq[site], "to": seq[site] + 1, "identifiers": identifiers})
    answer = http.request("POST", url + "/resolver/v1/push", body=raw,
                          headers=sign(KEYS[site], site, "POST", "/resolver/v1/push", raw))
    if answer.status == 200:
        seq[site] += 1
    return answer.status


def record(site: str, n: int, pdh: str | None, **fields: object) -> dict:
    return {"uuid": f"{site}-4zz18-00000000000000{n}", "kind": "collection", "pdh": pdh, "size": 1, **fields}


def test_a_doi_published_on_other_data_does_not_win_a_launch(resolver):
    doi = "doi:10.5555/famous"
    assert resolver.push("z1111", {doi: [record("z1111", 1, GENUINE)]}) == 200
    assert resolver.push("z2222", {doi: [record("z2222", 2, OTHER)]}) == 200  # the squatter, live and "home"
    found = resolve(doi, None, [resolver.url])
    assert {h["site"] for h in found.holders} == {"z1111", "z2222"}
    with pytest.raises(Unprocessable) as refused:  # before: z2222 chosen, for being the launcher's home
        choose(found, "z2222", {"z1111", "z2222"})
    assert GENUINE in str(refused.value) and OTHER in str(refused.value)
    plan = choose(found, "z2222", {"z1111", "z2222"}, site="z1111")  # the user names the site she checked
    assert (plan.site, plan.pdh) == ("z1111", GENUINE)


def test_a_keep_identifier_resolves_only_to_holders_of_that_content(resolver):
    squatted = f"keep:{GENUINE}"
    assert resolver.push("z2222", {squatted: [record("z2222", 3, OTHER)]}) == 200
    assert resolver.push("z1111", {"doi:10.5555/genuine": [record("z1111", 4, GENUINE)]}) == 200
    answer = json.loads(http.request("GET", resolver.url + "/resolver/v1/resolve",
                                     fields={"id": squatted}).data)
    assert {(h["site"], h["pdh"]) for h in answer["holders"]} == {("z1111", GENUINE)}
    plan = choose(resolve(squatted, None, [resolver.url]), "z2222", {"z1111", "z2222"})
    assert (plan.site, plan.pdh) == ("z1111", GENUINE)


@pytest.mark.parametrize("bad", [
    {"pdh": "not-a-pdh"}, {"pdh": GENUINE + "+Kz2222-bi6l4-000000000000001"}, {"kind": "container"},
    {"kind": {"collection": 1}}, {"uuid": "z2222"}, {"uuid": "z2222-4zz18-0000000000000001" + "x" * 100},
    {"size": "big"}, {"size": -1}, {"size": True}, {"name": ["a"]}, {"name": "n" * 5000}, {"residency": 7},
])
def test_records_a_launch_trusts_must_have_their_shape(resolver, bad):
    assert resolver.push("z2222", {"doi:10.5555/shape": [{**record("z2222", 5, OTHER), **bad}]}) == 400
    answer = json.loads(http.request("GET", resolver.url + "/resolver/v1/resolve",
                                     fields={"id": "doi:10.5555/shape"}).data)
    assert answer["holders"] == []
