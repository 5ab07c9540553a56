"""Blocks signed by another cluster (`+R<cluster>-<sig>`): fetched from that cluster for the
caller, verified, and kept in a bounded cache, so repeated reads cross the network once.

The caller's token is salted for the remote cluster (it proves the caller's identity there and
is useless anywhere else), and the `+R` hint is turned back into the `+A` the remote verifies.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from ..auth.salt import SaltError, salt_token
from ..config import ClusterConfig
from .cache import BlockCache
from .client import KeepClient
from .errors import InvalidLocator
from .locator import Locator
from .signing import remote_to_local

CLUSTER_HEADER = "X-Archipelago-Cluster"  # tells the serving cluster who is reading, for its counters


class RemoteBlocks:
    def __init__(self, config: ClusterConfig, cache: BlockCache):
        self.config, self.cache = config, cache
        self.fetched: Counter[str] = Counter()  # bytes fetched from each remote cluster
        self._clients: dict[str, KeepClient] = {}
        self._lock = threading.Lock()

    def _client(self, cluster_id: str) -> KeepClient:
        with self._lock:
            if cluster_id not in self._clients:
                remote = self.config.remote_clusters[cluster_id]
                self._clients[cluster_id] = KeepClient.from_api(
                    remote.url, insecure=remote.insecure, cache=None, retries=1,
                    extra_headers={CLUSTER_HEADER: self.config.cluster_id})
            return self._clients[cluster_id]

    def _target(self, locator: Locator, token: str) -> tuple[str, str, str]:
        """(cluster, the locator as that cluster signed it, the caller's token salted for it)."""
        signature = locator.remote_signature
        if signature is None or signature.cluster_id is None:
            raise InvalidLocator("invalid remote hint")
        cluster_id = signature.cluster_id
        if cluster_id not in self.config.remote_clusters:
            raise InvalidLocator(f"remote cluster {cluster_id} is not configured here")
        try:
            salted = salt_token(token, cluster_id)
        except SaltError as exc:
            raise InvalidLocator(f"cannot read a remote block with this token: {exc}") from None
        return cluster_id, remote_to_local(str(locator), cluster_id), salted

    def cached(self, locator: Locator) -> bytes | bytearray | None:
        return self.cache.get(locator.md5)

    def read(self, locator: Locator, token: str) -> bytes | bytearray:
        cached = self.cached(locator)
        if cached is not None:
            return cached
        cluster_id, remote_locator, salted = self._target(locator, token)
        data = self._client(cluster_id).get(remote_locator, token=salted)
        self.remember(locator, cluster_id, data)
        return data

    def open(self, locator: Locator, token: str) -> tuple[str, Any]:
        """(cluster, open response) for relaying a block while it is verified (see keepstore)."""
        cluster_id, remote_locator, salted = self._target(locator, token)
        return cluster_id, self._client(cluster_id).open_body(remote_locator, token=salted)

    def remember(self, locator: Locator, cluster_id: str, data: bytes | bytearray) -> None:
        """A verified block from `cluster_id`: count the bytes that crossed, keep it for next time."""
        with self._lock:
            self.fetched[cluster_id] += len(data)
        self.cache.put(locator.md5, data)
