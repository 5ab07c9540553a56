"""The resolver on loopback, for real: three clusters (z1111 pushes and is polled, z2222 only pushes,
z3333 is only polled, as a firewalled site) and a resolver process. Identifiers registered on two
sites resolve to both; a site killed is marked down by the next poll and answers prefer the live
one; PDH lookups ask only the sites the resolver names; with the resolver down, the home cluster
still resolves its own identifiers, and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from archipelago.resolver.client import ResolverClient
from archipelago.rpc import ApiRequestError
from archipelago.sdk.client import ApiClient
from archipelago.sdk.collection import Collection
from tests.support.resolver import resolver_federation

pytestmark = pytest.mark.integration
MODES = {"z1111": "both", "z2222": "push", "z3333": "poll"}
# windows longer than any test: a site is down here only because a poll of it failed, never by age
WINDOWS = {"live_window": 120, "stale_window": 240, "drop_after": 600, "poll_interval": 1}


def wait_until(what, check, deadline: float = 30):
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline} s: {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    with resolver_federation(tmp_path_factory.mktemp("resolver-fed"), MODES, WINDOWS) as federation:
        yield federation


def dataset(admin: ApiClient, name: str, identifier: str, publish: bool = True, **extra) -> dict:
    collection = Collection(admin)
    collection.write("data.csv", f"{name}\n".encode() * 100)
    record = collection.save_new(name, **extra)
    admin.request("POST", "identifiers", body={"identifier": {"head_uuid": record["uuid"], "identifier": identifier,
                                                              "published": publish}})
    return record


def archi(*args: str, home: ApiClient | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHI_", "ARVADOS_"))}
    if home is not None:
        env.update(ARCHI_API_HOST=home.base, ARCHI_API_TOKEN=home.token, ARCHI_API_HOST_INSECURE="1")
    return subprocess.run([sys.executable, "-m", "archipelago", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def holders(resolver_url: str, identifier: str) -> list[tuple[str, str]]:
    answer = ResolverClient([resolver_url]).resolve(identifier)
    assert answer is not None
    return [(h["site"], h["liveness"]) for h in answer.data["holders"]]


def test_published_identifiers_resolve_to_every_site_that_holds_them_with_their_liveness(fed):
    url, admins = fed["resolver"].url, fed["admins"]
    on_1 = dataset(admins["z1111"], "trial-1", "https://doi.org/10.5555/TRIAL")
    on_2 = dataset(admins["z2222"], "trial-2", "doi:10.5555/trial")
    on_3 = dataset(admins["z3333"], "firewalled", "ega.dataset:EGAD00001000003")  # reaches the resolver by poll only
    dataset(admins["z1111"], "private", "doi:10.5555/private-cohort", publish=False)
    wait_until("both holders live", lambda: sorted(holders(url, "doi:10.5555/trial")) ==
               [("z1111", "live"), ("z2222", "live")])
    wait_until("the polled site's registration", lambda: holders(url, "EGA.DATASET:EGAD00001000003") ==
               [("z3333", "live")])
    answer = ResolverClient([url]).resolve("doi:10.5555/trial")
    assert answer is not None
    by_site = {h["site"]: h for h in answer.data["holders"]}
    assert {by_site["z1111"]["uuid"], by_site["z2222"]["uuid"]} == {on_1["uuid"], on_2["uuid"]}
    assert by_site["z2222"]["pdh"] == on_2["portable_data_hash"] and by_site["z2222"]["size"] == 800
    assert by_site["z2222"]["routes"]["drs"].startswith("drs://127.0.0.1:") and on_3["uuid"]
    assert holders(url, "doi:10.5555/private-cohort") == []  # never published: never left its site
    sites = json.loads(archi("resolver", "sites", "--resolver", url, "--json").stdout)["sites"]
    assert {s["site"]: s["mode"] for s in sites} == MODES and all(s["liveness"] == "live" for s in sites)
    assert {s["site"]: s["seen_by"] for s in sites if s["mode"] != "both"} == {"z2222": "push", "z3333": "poll"}
    assert {s["site"]: s["poll_interval"] for s in sites} == {"z1111": 1, "z2222": None, "z3333": 1}
    shown = archi("resolve", "https://doi.org/10.5555/Trial", "--resolver", url, home=admins["z2222"])
    assert shown.returncode == 0 and "z1111  live" in shown.stdout and "z2222  live" in shown.stdout


def test_a_withdrawn_identifier_is_withdrawn_from_the_resolver(fed):
    url, admin = fed["resolver"].url, fed["admins"]["z2222"]
    record = dataset(admin, "soon-gone", "doi:10.5555/withdrawn")
    wait_until("registered", lambda: holders(url, "doi:10.5555/withdrawn") == [("z2222", "live")])
    admin.collections.delete(record["uuid"])  # trashed: no longer held there
    wait_until("withdrawn", lambda: holders(url, "doi:10.5555/withdrawn") == [])


def test_a_pdh_lookup_asks_the_sites_the_resolver_names_first(fed):
    admins = fed["admins"]
    held = dataset(admins["z3333"], "only-on-3", "doi:10.5555/only-on-3", publish=False)
    readable = dataset(admins["z3333"], "readable-on-3", "doi:10.5555/readable-on-3", publish=False)
    admins["z3333"].links.create({"link_class": "permission", "name": "can_read", "head_uuid": readable["uuid"],
                                  "tail_uuid": admins["z1111"].users.current()["uuid"]})

    def message(pdh: str) -> str:
        with pytest.raises(ApiRequestError) as info:
            admins["z1111"].collections.get(pdh)  # z1111's admin is a stranger to z3333's private data
        return info.value.message

    text = wait_until("the resolver names z3333", lambda: (m := message(held["portable_data_hash"])) and
                      "the 1 cluster(s) the resolver named" in m and m)  # once a poll brought z3333's holdings
    assert text.index("z3333:") < text.index("z2222:")  # the holder first; the others only as it said no
    got = admins["z1111"].collections.get(readable["portable_data_hash"])
    assert got["portable_data_hash"] == readable["portable_data_hash"]


def test_a_killed_site_is_down_by_the_next_poll_and_answers_prefer_the_live_one(fed):
    url, admins = fed["resolver"].url, fed["admins"]
    dataset(admins["z1111"], "kill-1", "doi:10.5555/kill")
    dataset(admins["z2222"], "kill-2", "doi:10.5555/kill")
    wait_until("both live", lambda: sorted(holders(url, "doi:10.5555/kill")) == [("z1111", "live"), ("z2222", "live")])
    fed["clusters"]["z1111"].kill()
    # by poll, well within its live window (nothing else could make it down so soon)
    wait_until("z1111 down", lambda: holders(url, "doi:10.5555/kill") == [("z2222", "live"), ("z1111", "down")],
               deadline=60)
    answer = json.loads(archi("resolve", "doi:10.5555/kill", "--resolver", url, "--json",
                              home=admins["z2222"]).stdout)
    assert [h["site"] for h in answer["holders"]] == ["z2222", "z1111"] and not answer["all_down"]
    assert answer["holders"][1]["last_seen"] is not None


def test_with_the_resolver_down_the_home_cluster_resolves_alone_and_says_so(fed):
    admins = fed["admins"]
    mine = dataset(admins["z2222"], "local-only", "doi:10.5555/local-resolution", publish=False)
    fed["resolver"].stop()
    shown = archi("resolve", "https://doi.org/10.5555/LOCAL-RESOLUTION", "--json", home=admins["z2222"])
    assert shown.returncode == 0, shown.stderr
    answer = json.loads(shown.stdout)
    assert answer["home_only"] is True and answer["resolver_errors"]
    assert [(h["site"], h["uuid"]) for h in answer["holders"]] == [("z2222", mine["uuid"])]
    text = archi("resolve", "doi:10.5555/local-resolution", home=admins["z2222"]).stdout
    assert "home cluster z2222 alone: no resolver answered" in text
    bad = archi("resolve", "doi:11.1/x", home=admins["z2222"])
    assert bad.returncode == 2 and "a DOI is 10." in bad.stderr
