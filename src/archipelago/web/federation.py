"""The federation as the web UI sees it: its clusters, one Backend per cluster (this cluster's own
engine, or the router's RemoteBackend for a peer, which salts the user's token for it), questions
asked of every cluster at once, and one colour per cluster."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from ..backend.interface import Backend, Caller, ListParams, Record
from ..config import ClusterConfig
from ..errors import ArchipelagoError, NotFound
from .render import CLUSTER_COLOURS

T = TypeVar("T")


class ClusterBackend(Protocol):
    """What the UI asks of one cluster (LocalBackend and RemoteBackend both answer it)."""

    def get(self, caller: Caller, resource: str, uuid: str, select: list[str] | None = None,
            include_trash: bool = False) -> Record: ...

    def list(self, caller: Caller, resource: str, params: ListParams) -> Record: ...

    def create(self, caller: Caller, resource: str, attrs: Record, ensure_unique_name: bool = False,
               cluster_id: str | None = None) -> Record: ...

    def update(self, caller: Caller, resource: str, uuid: str, attrs: Record) -> Record: ...


class Federation:
    def __init__(self, config: ClusterConfig, backend: Backend, threads: int = 8):
        self.config, self.backend = config, backend
        self.home = config.cluster_id
        self.remotes: dict[str, Any] = dict(getattr(backend, "remotes", {}))  # the router's RemoteBackends
        self.clusters = [self.home, *sorted(self.remotes)]
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="web-federation")
        self._readers = ThreadPoolExecutor(threads, thread_name_prefix="web-reads")  # never nested in _pool's work

    def backend_for(self, cluster: str) -> ClusterBackend:
        if cluster == self.home:
            return self.backend.this_cluster()
        if cluster in self.remotes:
            return self.remotes[cluster]
        raise NotFound(f"cluster {cluster!r} is not part of this federation "
                       f"({', '.join(self.clusters)})")

    def url(self, cluster: str) -> str:
        if cluster == self.home:
            return self.config.api.url
        remote = self.config.remote_clusters.get(cluster)
        if remote is None:
            raise NotFound(f"cluster {cluster!r} is not part of this federation")
        return remote.url

    def colour(self, cluster: str) -> int:
        """The same colour for a cluster on every page: its place among the federation's clusters."""
        ordered = sorted(self.clusters)
        return (ordered.index(cluster) if cluster in ordered else len(ordered)) % CLUSTER_COLOURS

    def each(self, fn: Callable[[str], T], clusters: list[str] | None = None) -> dict[str, T | ArchipelagoError]:
        """fn(cluster) on every cluster at once; a cluster that fails gives its error, not an exception."""
        wanted = clusters if clusters is not None else self.clusters
        futures = {cluster: self._pool.submit(fn, cluster) for cluster in wanted}
        results: dict[str, T | ArchipelagoError] = {}
        for cluster, future in futures.items():
            try:
                results[cluster] = future.result()
            except ArchipelagoError as exc:
                results[cluster] = exc
        return results

    def map(self, fn: Callable[[Any], T], items: list[Any]) -> list[T]:
        """fn over items in parallel (reading many small logs), in order; errors are raised."""
        return list(self._readers.map(fn, items))
