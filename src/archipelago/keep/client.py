"""The Keep client: every block the project moves goes through it (reads, writes, the keepstores'
admin endpoints, gateways). This module holds its settings and its face; the work is in the modules
beside it — services.py (discovery, read order), http.py (its one connection pool), attempts.py
(retries decided on typed failures), reads.py, writes.py, many.py, admin.py.

Synchronous on purpose (urllib3 connection pools, worker threads for parallel transfers): md5
and socket I/O release the GIL, so threads use both cores, and callers (CLI, SDK, tests) stay
plain Python. Async callers (keepstore's pull worker and relay) run it in a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..formats.locator import Locator
from . import admin, many, reads, services, writes
from .attempts import first_answer, raise_read_failure
from .cache import BlockCache
from .errors import ServiceFailure
from .http import KeepConnections, Response
from .services import KeepService

T = TypeVar("T")


def _locator(locator: str | Locator, require_size: bool = True) -> Locator:
    return locator if isinstance(locator, Locator) else Locator.parse(locator, require_size=require_size)


@dataclass
class KeepClient:
    services: list[KeepService]
    token: str | None = None
    replicas: int = 1
    retries: int = 3
    backoff: float = 0.2
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    max_workers: int = 4
    cache: BlockCache | None = field(default_factory=BlockCache)
    storage_classes: list[str] | None = None
    extra_headers: dict[str, str] = field(default_factory=dict)
    insecure: bool = False  # accept self-signed certificates (a loopback cluster's own)

    def __post_init__(self) -> None:
        self.http = KeepConnections(self.max_workers * 2, self.connect_timeout, self.read_timeout, self.insecure)
        self.hashers = ThreadPoolExecutor(self.max_workers, thread_name_prefix="keep-md5")

    # ------------------------------------------------------------ discovery
    @classmethod
    def from_urls(cls, urls: Iterable[str], token: str | None = None, **kwargs: Any) -> KeepClient:
        """Services given as plain URLs, with Arvados' placeholder UUIDs `00000-bi6l4-<index>`."""
        return cls(services.from_urls(urls), token, **kwargs)

    @classmethod
    def from_env(cls, **kwargs: Any) -> KeepClient:
        """`ARVADOS_KEEP_SERVICES` (space-separated URLs) and `ARVADOS_API_TOKEN`, like the Arvados SDK."""
        return cls(services.from_env(), os.environ.get("ARVADOS_API_TOKEN"), **kwargs)

    @classmethod
    def from_api(cls, api_url: str, token: str | None = None, insecure: bool = False, **kwargs: Any) -> KeepClient:
        """Ask the API server's `keep_services/accessible`, as Arvados clients do."""
        return cls(services.from_api(api_url, token, insecure), token, insecure=insecure, **kwargs)

    def service(self, uuid: str) -> KeepService:
        found = next((s for s in self.services if s.uuid == uuid), None)
        if found is None:
            raise KeyError(f"no keep service {uuid} is known to this client")
        return found

    # ------------------------------------------------------------ plumbing
    def headers(self, extra: dict[str, str] | None = None, token: str | None = None) -> dict[str, str]:
        token = token or self.token
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return {**auth, **self.extra_headers, **(extra or {})}

    def from_first_service(self, loc: Locator, attempt: Callable[[KeepService], T | ServiceFailure],
                           order: list[KeepService] | None = None) -> T:
        """The answer of the first service in read order (or in `order`) that gives one, with
        retries; when none does, the read-failure rule (attempts.raise_read_failure) decides the error."""
        if order is None:
            order = services.read_order(loc, self.services)
        answer, failures = first_answer(order, attempt, self.retries, self.backoff)
        if answer is None:
            raise_read_failure(loc, failures)
        return answer

    # ------------------------------------------------------------ reads
    def get(self, locator: str | Locator, token: str | None = None) -> bytes | bytearray:
        """The block's bytes, verified against its md5; tries every service before giving up.
        `token` overrides the client's token for this read (keepstore fetching for its callers)."""
        loc = _locator(locator)
        if self.cache is not None and (cached := self.cache.get(loc.md5)) is not None:
            return cached
        data = reads.fetch(self, loc, None, token)
        assert isinstance(data, bytearray)  # received into a fresh buffer
        if self.cache is not None:
            self.cache.put(loc.md5, data)
        return data

    def get_from(self, order: list[KeepService], locator: str | Locator, token: str | None = None) -> bytearray:
        """The block, verified, from these services in this order (a pull list names them), uncached."""
        data = reads.fetch(self, _locator(locator), None, token, order)
        assert isinstance(data, bytearray)  # received into a fresh buffer
        return data

    def get_into(self, locator: str | Locator, buffer: reads.Buffer) -> memoryview:
        """Like get(), but received into the caller's buffer (at least the block's size), which a
        caller streaming many blocks reuses: fresh 64 MiB allocations cost page faults."""
        loc = _locator(locator)
        if self.cache is not None and (cached := self.cache.get(loc.md5)) is not None:
            buffer[: len(cached)] = cached
            return memoryview(buffer)[: len(cached)]
        data = reads.fetch(self, loc, buffer)
        return memoryview(data)[: loc.size if loc.size is not None else len(data)]

    def open_body(self, locator: str | Locator, token: str | None = None) -> Response:
        """The open answer of the first service that has the block (not verified: for relays that
        hash what they pass on). Release it when done."""
        return reads.open_body(self, _locator(locator), token)

    def head(self, locator: str | Locator, token: str | None = None, on: KeepService | None = None) -> int:
        """The block's size, if a service (or `on`) has it and accepts the locator's signature (no
        bytes move)."""
        return reads.head(self, _locator(locator, require_size=False), token, None if on is None else [on])

    def local_copy(self, locator: str | Locator) -> str:
        """For a `+R` locator: this cluster's keepstore copies the block here; the local locator."""
        return reads.local_copy(self, _locator(locator))

    def get_many(self, locators: Iterable[str | Locator]) -> Iterator[bytes | bytearray]:
        """Blocks in the given order, fetched in parallel with at most max_workers in flight."""
        return many.get_many(self, locators)

    def stream_blocks(self, locators: Iterable[str | Locator]) -> Iterator[memoryview]:
        """Blocks in order, fetched ahead into reused buffers: each view is valid until the next."""
        return many.stream_blocks(self, locators)

    # ------------------------------------------------------------ writes
    def put(self, data: bytes | bytearray | memoryview, replicas: int | None = None, md5: str | None = None) -> str:
        """Store `data` on enough services for `replicas` copies; returns the signed locator."""
        signed = writes.store(self, data, replicas, md5)
        if self.cache is not None:  # a copy: callers reuse their buffers
            self.cache.put(signed[:32], bytes(data))
        return signed

    def put_on(self, service: KeepService, data: bytes | bytearray | memoryview) -> str:
        """Store `data` on this one service (a gateway taking a block moved to its store)."""
        return writes.store_on(self, service, data)

    def uploader(self) -> writes.ParallelUploader:
        return writes.ParallelUploader(self)

    # ------------------------------------------------------------ one service's other endpoints
    def index(self, service: KeepService, prefix: str = "") -> list[admin.IndexEntry]:
        return admin.index(self, service, prefix)

    def trash(self, service: KeepService, entries: list[admin.IndexEntry]) -> int:
        return admin.trash(self, service, entries)

    def pull(self, service: KeepService, requests: list[dict[str, Any]]) -> int:
        return admin.pull(self, service, requests)

    def metrics(self, service: KeepService) -> str:
        return admin.metrics(self, service)

    def register(self, service: KeepService, path: str) -> Iterator[dict[str, Any]]:
        return admin.register(self, service, path)
