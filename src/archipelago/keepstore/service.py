"""What keepstore decides before any byte moves, with no HTTP in it: who may read or write a
block (signatures, the system root token), whether data under a residency policy may leave,
and signing what it stores."""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from ..config import ClusterConfig
from ..errors import Forbidden, Unauthorized
from ..formats.locator import Locator
from ..formats.signing import sign_locator, verify_locator
from ..formats.tokens import from_another_cluster
from ..refusals import record_refusal
from .remote_blocks import RemoteBlocks
from .store import BlockStore
from .tokens import TokenCheck

log = logging.getLogger("archipelago.keepstore")


class BlockAccess:
    """Who may read a block and what leaves the cluster: the rules keepstore and the gateways
    (gateway/) share, so a block is guarded the same wherever its bytes lie."""

    def __init__(self, config: ClusterConfig, all_stay: bool = False):
        self.config = config
        self.key = config.collections.blob_signing_key.encode()
        self.ttl = config.collections.blob_signing_ttl
        # blocks under a residency policy, refreshed from the cluster database when there is one
        self.restricted: set[str] = set()
        self.all_stay = all_stay  # every block served here stays (a gateway with a residency policy)

    def check_signature(self, locator: Locator, token: str | None) -> None:
        if not self.config.collections.blob_signing:
            return
        if token is None:
            raise Unauthorized("missing token: a signed locator and its token are required")
        verify_locator(locator, token, self.ttl, self.key)

    def sign(self, md5: str, size: int, token: str | None, hints: str = "") -> str:
        """`md5+size` (with `hints`, e.g. a gateway's `+K@<uuid>`) signed for `token`; unsigned without one."""
        plain = f"{md5}+{size}{hints}"
        if token is None:
            return plain
        return sign_locator(plain, token, int(time.time()) + self.ttl, self.ttl, self.key)

    def from_outside(self, reader_cluster: str | None, token: str | None) -> bool:
        """Another cluster's keepstore (it says so), or a token another cluster issued (salted or not)."""
        if (reader_cluster or self.config.cluster_id) != self.config.cluster_id:
            return True
        return from_another_cluster(token, self.config.cluster_id)

    def guard_residency(self, md5: str, reader_cluster: str | None, token: str | None) -> None:
        if (self.all_stay or md5 in self.restricted) and self.from_outside(reader_cluster, token):
            log.warning("residency: refused block %s to %s", md5, reader_cluster or "a client of another cluster")
            record_refusal(f"block {md5}", f"cluster {reader_cluster}" if reader_cluster else "a client of another "
                           "cluster")
            raise Forbidden(f"block {md5} belongs to data that stays on cluster {self.config.cluster_id} "
                            "(residency policy 'cluster'): it cannot be read from outside that cluster")


class KeepstoreState(BlockAccess):
    """What every handler of one keepstore shares: its store, who may write, the remote-block relay,
    counters and the pull queue. (A `KeepService` is a keep_services record: keep/services.py.)"""

    def __init__(self, config: ClusterConfig, store: BlockStore, tokens: TokenCheck):
        super().__init__(config)
        self.store = store
        self.tokens = tokens  # who may store blocks
        self.remote = RemoteBlocks(config)
        self.served: Counter[str] = Counter()  # bytes served to each other cluster's keepstore
        self.pull_queue: list[dict[str, Any]] = []
        self.puts_in_progress = 0  # on the event loop's thread only
        self.puts_by_holder: Counter[str] = Counter()  # the same, by the user whose token PUTs

    def require_root(self, token: str | None) -> None:
        if token is None:
            raise Unauthorized("missing token")
        if token != self.config.system_root_token:
            raise Forbidden("this endpoint needs the system root token")
