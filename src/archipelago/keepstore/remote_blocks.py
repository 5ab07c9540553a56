"""Blocks signed by another cluster (`+R<cluster>-<sig>`): fetched from that cluster for the
caller, verified, and kept in a bounded disk cache, so repeated reads cross the network once.

The cache lives on disk, not in memory: blocks are written into it as they stream (no 64 MiB
allocation per block, which costs page faults on every block) and served from it with sendfile.

The caller's token is salted for the remote cluster (it proves the caller's identity there and
is useless anywhere else), and the `+R` hint is turned back into the `+A` the remote verifies.
"""

from __future__ import annotations

import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

from ..config import ClusterConfig
from ..formats.locator import Locator
from ..formats.signing import remote_to_local
from ..formats.tokens import SaltError, salt_token
from ..keep.cache import BlockCache, DiskEntryWriter
from ..keep.client import KeepClient
from ..keep.errors import InvalidLocator

CLUSTER_HEADER = "X-Archipelago-Cluster"  # tells the serving cluster who is reading, for its counters


class RemoteBlocks:
    def __init__(self, config: ClusterConfig):
        self.config = config
        directory = config.keepstore.remote_cache_dir or Path(tempfile.mkdtemp(prefix="archi-remote-cache-"))
        # at least the last block stays (a relay writes each block there as it passes)
        self.cache: BlockCache[bytes | bytearray] = BlockCache(
            memory_bytes=0, disk_dir=directory, disk_bytes=max(1, config.keepstore.remote_cache_bytes))
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

    def cached(self, locator: Locator) -> Path | None:
        """The cache file of a block fetched before, if it is still there."""
        return self.cache.disk_path(locator.md5)

    def open_cached(self, locator: Locator) -> BinaryIO | None:
        """The cached block, opened: once open, evicting it from the cache cannot cut a read short."""
        path = self.cached(locator)
        try:
            return open(path, "rb") if path is not None else None  # the caller closes it
        except FileNotFoundError:  # evicted between the lookup and the open
            return None

    def read(self, locator: Locator, token: str) -> bytes | bytearray:
        if (cached := self.open_cached(locator)) is not None:
            with cached:
                return cached.read()
        cluster_id, remote_locator, salted = self._target(locator, token)
        data = self._client(cluster_id).get(remote_locator, token=salted)  # verified by the client
        self.count(cluster_id, len(data))
        self.cache.put(locator.md5, data)
        return data

    def open(self, locator: Locator, token: str) -> tuple[str, Any]:
        """(cluster, open response) for relaying a block while it is verified (see keepstore)."""
        cluster_id, remote_locator, salted = self._target(locator, token)
        return cluster_id, self._client(cluster_id).open_body(remote_locator, token=salted)

    def confirm(self, locator: Locator, token: str) -> int:
        """Ask the block's cluster whether this caller may read it (a HEAD: no bytes cross); its size.
        Needed before vouching for a block held here already: a `+R` signature is checked only there."""
        cluster_id, remote_locator, salted = self._target(locator, token)
        return self._client(cluster_id).head(remote_locator, token=salted)

    def writer(self, locator: Locator) -> DiskEntryWriter:
        """Where a relayed block is written as it arrives; commit() once its md5 checks out."""
        return self.cache.writer(locator.md5)

    def count(self, cluster_id: str, size: int) -> None:
        """Bytes that crossed from `cluster_id`, for the metrics."""
        with self._lock:
            self.fetched[cluster_id] += size
