"""Liveness from what the resolver heard, and the signatures that authenticate sites: pure logic."""

from __future__ import annotations

import pytest

from archipelago.errors import Unauthorized
from archipelago.resolver.liveness import Heard, Windows, judge
from archipelago.resolver.signing import NonceMemory, sign, verify

W = Windows(mode="both", live_window=30, stale_window=120, drop_after=600, poll_interval=10)


@pytest.mark.parametrize(("heard", "status"), [
    (Heard(push_ok=1000 - 5), "live"),
    (Heard(poll_ok=1000 - 29), "live"),
    (Heard(push_ok=1000 - 60), "stale"),
    (Heard(push_ok=1000 - 300), "down"),
    (Heard(push_ok=1000 - 700), "dropped"),
    (Heard(), "dropped"),
    (Heard(poll_failed=1000 - 1, poll_error="refused"), "down"),
    (Heard(push_ok=1000 - 5, poll_failed=1000 - 1, poll_error="refused"), "down"),  # asked, and it did not answer
    (Heard(push_ok=1000 - 1, poll_failed=1000 - 5, poll_error="refused"), "live"),  # it pushed since
])
def test_a_site_is_live_stale_down_or_dropped_by_its_windows(heard, status):
    assert judge(W, heard, 1000).status == status


def test_only_what_the_sites_mode_counts_is_evidence():
    polled_only = Windows(mode="poll", live_window=30)
    assert judge(polled_only, Heard(push_ok=999), 1000).status == "dropped"  # its pushes do not count
    assert judge(polled_only, Heard(poll_ok=999), 1000).by == "poll"
    pushing_only = Windows(mode="push", live_window=30)
    assert judge(pushing_only, Heard(push_ok=999, poll_failed=999.5, poll_error="x"), 1000).status == "live"


KEYS = {"z1111": "k" * 32}


def test_a_signed_request_verifies_and_any_change_breaks_it():
    headers = sign(KEYS["z1111"], "z1111", "POST", "/resolver/v1/push", b"{}", at=1000.0)
    assert verify(KEYS, headers, "POST", "/resolver/v1/push", b"{}", now=1001.0).site == "z1111"
    for method, target, body, keys in [("POST", "/resolver/v1/push", b"{ }", KEYS),
                                       ("GET", "/resolver/v1/push", b"{}", KEYS),
                                       ("POST", "/resolver/v1/push?x=1", b"{}", KEYS),
                                       ("POST", "/resolver/v1/push", b"{}", {"z1111": "m" * 32})]:
        with pytest.raises(Unauthorized, match="bad signature"):
            verify(keys, headers, method, target, body, now=1001.0)
    with pytest.raises(Unauthorized, match="unknown site"):
        verify({}, headers, "POST", "/resolver/v1/push", b"{}", now=1001.0)
    with pytest.raises(Unauthorized, match="from now"):
        verify(KEYS, headers, "POST", "/resolver/v1/push", b"{}", now=1000.0 + 301)
    with pytest.raises(Unauthorized, match="unsigned"):
        verify(KEYS, {}, "POST", "/resolver/v1/push", b"{}")


def test_a_read_is_answered_once_per_nonce():
    memory = NonceMemory()
    signed = verify(KEYS, sign(KEYS["z1111"], "z1111", "GET", "/x"), "GET", "/x", b"")
    memory.check(signed)
    with pytest.raises(Unauthorized, match="replayed"):
        memory.check(signed)
