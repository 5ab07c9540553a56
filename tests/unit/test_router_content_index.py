"""The federation router's PDH search with a resolver's content index, in process. A federation of
a thousand peers cannot run on this machine, so the peers here are stubs (StubPeer) that only count
the calls they get and answer as a holder or a non-holder would; the index is a stub too (the real
one is tested against a real resolver in tests/integration/test_resolver.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from archipelago.errors import NotFound
from archipelago.federation.router import FederatedBackend
from archipelago.formats.manifest import portable_data_hash

MANIFEST = ". 0cc175b9c0f1b6a831c399e269772661+1 0:1:a.txt\n"
PDH = portable_data_hash(MANIFEST)


@dataclass
class StubPeer:
    holds: bool
    calls: int = 0

    def get(self, caller: Any, resource: str, pdh: str, select: Any = None) -> dict[str, Any]:
        self.calls += 1
        if not self.holds:
            raise NotFound("not here")
        return {"uuid": pdh, "manifest_text": MANIFEST, "portable_data_hash": pdh}


class StubLocal:
    def get(self, *args: Any) -> dict[str, Any]:
        raise NotFound("not on this cluster")


@dataclass
class Answer:
    url: str
    data: dict[str, Any]


@dataclass
class StubIndex:
    holders_: list[str]
    covers: set[str]
    answers: bool = True
    asked: list[str] = field(default_factory=list)

    def holders(self, pdh: str) -> Answer | None:
        self.asked.append(pdh)
        return Answer("http://resolver", {"holders": [{"site": s, "liveness": "live"} for s in self.holders_]}) \
            if self.answers else None

    def covered(self, url: str) -> set[str]:
        return self.covers


def federation(peers: int, holder: str, index: StubIndex | None) -> tuple[FederatedBackend, dict[str, StubPeer]]:
    remotes = {f"p{n:04d}": StubPeer(holds=f"p{n:04d}" == holder) for n in range(peers)}
    return FederatedBackend(StubLocal(), remotes, "z1111", content_index=index), remotes  # type: ignore[arg-type]


@pytest.mark.parametrize("peers", [3, 1000])
def test_with_a_resolver_one_lookup_asks_only_the_holder_whatever_the_number_of_peers(peers):
    index = StubIndex(["p0002"], covers={f"p{n:04d}" for n in range(peers)})
    router, remotes = federation(peers, "p0002", index)
    assert router.get(None, "collections", PDH)["portable_data_hash"] == PDH  # type: ignore[arg-type]
    assert index.asked == [PDH] and sum(r.calls for r in remotes.values()) == 1 and remotes["p0002"].calls == 1


def test_peers_the_resolver_does_not_cover_are_asked_too():
    index = StubIndex(["p0001"], covers={"p0000", "p0001"})
    router, remotes = federation(3, "p0002", index)  # p0002 holds it but pushes to no resolver
    assert router.get(None, "collections", PDH)["portable_data_hash"] == PDH  # type: ignore[arg-type]
    assert remotes["p0000"].calls == 0 and remotes["p0002"].calls == 1


def test_a_resolver_that_lags_a_write_is_not_the_last_word():
    index = StubIndex([], covers={"p0000", "p0001", "p0002"})  # not pushed yet
    router, _remotes = federation(3, "p0001", index)
    assert router.get(None, "collections", PDH)["portable_data_hash"] == PDH  # type: ignore[arg-type]


def test_without_a_resolver_answer_every_peer_is_asked():
    router, _remotes = federation(5, "p0004", StubIndex([], set(), answers=False))
    assert router.get(None, "collections", PDH)["portable_data_hash"] == PDH  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        federation(5, "nobody", StubIndex([], set(), answers=False))[0].get(None, "collections", PDH)  # type: ignore[arg-type]
