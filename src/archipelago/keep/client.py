"""The Keep client: rendezvous-ordered services, replicated writes, verified reads, retries, a cache.

Synchronous on purpose (urllib3 connection pools, worker threads for parallel transfers): md5
and socket I/O release the GIL, so threads use both cores, and callers (CLI, SDK, tests) stay
plain Python.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from threading import BoundedSemaphore, Lock
from typing import Any, NoReturn, TypeVar

import urllib3

from ..formats.locator import BLOCK_SIZE, Locator
from ..rpc import ApiConnection, ApiRequestError
from .cache import BlockCache
from .errors import BlockNotFound, KeepError
from .rendezvous import rendezvous_order

RETRYABLE = frozenset({408, 409, 423, 500, 502, 503, 504})
T = TypeVar("T")
READ_CHUNK = 1 << 20
POOLED_MIN = 1 << 20  # blocks above this size are received into pooled block-size buffers
HASH_CHUNK = 4 << 20


@dataclass(frozen=True)
class KeepService:
    uuid: str
    url: str
    service_type: str = "disk"  # disk | proxy | gateway:<kind>
    read_only: bool = False

    @classmethod
    def from_record(cls, record: dict) -> KeepService:
        scheme = "https" if record.get("service_ssl_flag") else "http"
        return cls(
            uuid=record["uuid"],
            url=f"{scheme}://{record['service_host']}:{record['service_port']}",
            service_type=record.get("service_type", "disk"),
            read_only=bool(record.get("read_only")),
        )


class KeepWriteError(KeepError):
    """Fewer replicas were stored than asked for; lists what each service said."""

    status = 503


class KeepReadError(KeepError):
    """No service returned a verified copy of the block; lists what each service said."""

    status = 502


@dataclass(frozen=True)
class Failure:
    """Why one service did not answer, and whether asking it again later may help."""

    reason: str
    retry: bool = False
    status: int | None = None  # the service's HTTP status, if it answered at all

    @classmethod
    def from_status(cls, status: int, message: str) -> Failure:
        return cls(f"HTTP {status} {message}", status in RETRYABLE, status)


@dataclass
class _Attempt:
    service: KeepService
    failure: Failure


def _describe(attempts: list[_Attempt]) -> str:
    return "; ".join(f"{a.service.url}: {a.failure.reason}" for a in attempts) or "no keep services configured"


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

    def __post_init__(self) -> None:
        self._http = urllib3.PoolManager(
            maxsize=self.max_workers * 2,
            retries=False,
            timeout=urllib3.Timeout(connect=self.connect_timeout, read=self.read_timeout),
        )
        self._hashers = ThreadPoolExecutor(self.max_workers, thread_name_prefix="keep-md5")

    # ------------------------------------------------------------ discovery
    @classmethod
    def from_urls(cls, urls: Iterable[str], token: str | None = None, **kwargs: Any) -> KeepClient:
        """Services given as plain URLs, with Arvados' placeholder UUIDs `00000-bi6l4-<index>`."""
        services = [KeepService(f"00000-bi6l4-{n:015d}", url.rstrip("/")) for n, url in enumerate(urls)]
        return cls(services, token, **kwargs)

    @classmethod
    def from_env(cls, **kwargs: Any) -> KeepClient:
        """`ARVADOS_KEEP_SERVICES` (space-separated URLs) and `ARVADOS_API_TOKEN`, like the Arvados SDK."""
        urls = os.environ.get("ARVADOS_KEEP_SERVICES", "").split()
        if not urls:
            raise KeepError("ARVADOS_KEEP_SERVICES is not set")
        return cls.from_urls(urls, os.environ.get("ARVADOS_API_TOKEN"), **kwargs)

    @classmethod
    def from_api(cls, api_url: str, token: str | None = None, insecure: bool = False, **kwargs: Any) -> KeepClient:
        """Ask the API server's `keep_services/accessible`, as Arvados clients do."""
        try:
            answer = ApiConnection(api_url, token, insecure, timeout=10).request("GET", "keep_services/accessible")
        except ApiRequestError as exc:
            raise KeepError(f"keep_services/accessible at {api_url}: {exc}") from None
        return cls([KeepService.from_record(item) for item in answer["items"]], token, **kwargs)

    # ------------------------------------------------------------ plumbing
    def _headers(self, extra: dict[str, str] | None = None, token: str | None = None) -> dict[str, str]:
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return {**headers, **self.extra_headers, **(extra or {})}

    def _read_order(self, locator: Locator) -> list[KeepService]:
        """Services named by +K hints first, then the non-gateway services by rendezvous weight."""
        hinted = [s for target in locator.service_hints for s in self.services if s.uuid == target]
        ordinary = [s for s in self.services if not s.service_type.startswith("gateway:")]
        ranked = rendezvous_order(locator.md5, ordinary, lambda s: s.uuid)
        return hinted + [s for s in ranked if s not in hinted]

    def _with_retries(self, services: list[KeepService], attempt: Callable[[KeepService], Failure | None]) -> tuple[
        list[_Attempt], bool
    ]:
        """Run attempt() over services in order; it returns None on success, or why it failed.

        A retryable failure keeps the service for another round after a backoff.
        Returns the failures and whether any attempt succeeded (the caller decides when to stop).
        """
        failures: list[_Attempt] = []
        remaining = list(services)
        for round_ in range(self.retries + 1):
            if round_:
                time.sleep(self.backoff * 2 ** (round_ - 1))
            retry_next = []
            for service in remaining:
                outcome = attempt(service)
                if outcome is None:
                    return failures, True
                failures.append(_Attempt(service, outcome))
                if outcome.retry:
                    retry_next.append(service)
            remaining = retry_next
            if not remaining:
                break
        return failures, False

    # ------------------------------------------------------------ reads
    def get(self, locator: str | Locator, token: str | None = None) -> bytes | bytearray:
        """The block's bytes, verified against its md5; tries every service before giving up.

        `token` overrides the client's token for this read (keepstore fetching for its callers).
        """
        loc = locator if isinstance(locator, Locator) else Locator.parse(locator)
        if self.cache is not None and (cached := self.cache.get(loc.md5)) is not None:
            return cached
        data = self._fetch(loc, None, token)
        if self.cache is not None:
            self.cache.put(loc.md5, data)
        return data

    def get_into(self, locator: str | Locator, buffer: bytearray) -> memoryview:
        """Like get(), but received into the caller's buffer (at least the block's size), which a
        caller streaming many blocks reuses: fresh 64 MiB allocations cost page faults."""
        loc = locator if isinstance(locator, Locator) else Locator.parse(locator)
        if self.cache is not None and (cached := self.cache.get(loc.md5)) is not None:
            buffer[: len(cached)] = cached
            return memoryview(buffer)[: len(cached)]
        data = self._fetch(loc, buffer)
        return memoryview(data)[: loc.size if loc.size is not None else len(data)]

    def open_body(self, locator: str | Locator, token: str | None = None) -> Any:
        """The open response of the first service that has the block (probe order, retries).

        Not verified: for relays that hash what they read as they pass it on. Release it when done.
        """
        loc = locator if isinstance(locator, Locator) else Locator.parse(locator)
        return self._first_answer(loc, lambda service: self._open(service, loc, token))

    def head(self, locator: str | Locator, token: str | None = None) -> int:
        """The block's size, if a service has it and accepts the locator's signature (no bytes move)."""
        loc = locator if isinstance(locator, Locator) else Locator.parse(locator, require_size=False)

        def attempt(service: KeepService) -> tuple[int | None, Failure | None]:
            resp, failure = self._open(service, loc, token, method="HEAD")
            if resp is None:
                return None, failure
            resp.release_conn()
            return int(resp.headers.get("Content-Length", loc.size or 0)), None

        return self._first_answer(loc, attempt)

    def _first_answer(self, loc: Locator, attempt: Callable[[KeepService], tuple[T | None, Failure | None]]) -> T:
        """The answer of the first service that gives one, in probe order with retries; attempt()
        returns (answer, None) or (None, why not). When none answers, the read-failure rule applies."""
        answers: list[T] = []

        def step(service: KeepService) -> Failure | None:
            answer, failure = attempt(service)
            if failure is None:
                answers.append(answer)  # type: ignore[arg-type]
            return failure

        failures, ok = self._with_retries(self._read_order(loc), step)
        if not ok:
            _raise_read_failure(loc, failures)
        return answers[0]

    def _open(self, service: KeepService, loc: Locator, token: str | None, method: str = "GET",
              headers: dict[str, str] | None = None) -> tuple[Any, Failure | None]:
        """Ask one service: (open response, None), or (None, why not)."""
        try:
            resp = self._http.request(method, f"{service.url}/{loc}", preload_content=False, headers=self._headers(
                {"Accept": "application/octet-stream", **(headers or {})}, token))
        except urllib3.exceptions.HTTPError as exc:
            return None, Failure(f"connection failed ({exc.__class__.__name__})", retry=True)
        if resp.status != 200:
            message = _error_text(resp.read())
            resp.release_conn()
            return None, Failure.from_status(resp.status, message)
        return resp, None

    def _fetch(self, loc: Locator, into: bytearray | None, token: str | None = None) -> bytearray:
        """GET from each service in probe order until one returns bytes that hash to the locator.

        The body is received straight into one buffer: on a machine where a 64 MiB memcpy costs
        as much as hashing it, every avoided copy shows in the throughput.
        """
        def attempt(service: KeepService) -> tuple[bytearray | None, Failure | None]:
            resp, failure = self._open(service, loc, token)
            if resp is None:
                return None, failure
            try:
                size = int(resp.headers.get("Content-Length", loc.size or 0))
                if loc.size is not None and size != loc.size:
                    return None, Failure(f"size mismatch (server sent {size} bytes)")
                buffer = into if into is not None and len(into) >= size else bytearray(size)
                view = memoryview(buffer)
                hasher = hashlib.md5()
                received = hashed = 0
                hashing: Future[None] | None = None
                try:
                    while received < size:
                        n = resp.readinto(view[received : min(size, received + READ_CHUNK)])
                        if not n:
                            return None, Failure(f"transfer interrupted after {received} of {size} bytes", retry=True)
                        received += n
                        if received - hashed >= HASH_CHUNK or received == size:
                            # md5 runs in another thread (it releases the GIL) while we receive on
                            if hashing is not None:
                                hashing.result()
                            hashing = self._hashers.submit(hasher.update, view[hashed:received])
                            hashed = received
                finally:
                    if hashing is not None:
                        hashing.result()
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                return None, Failure(f"transfer interrupted ({exc.__class__.__name__})", retry=True)
            finally:
                resp.release_conn()
            if hasher.hexdigest() != loc.md5:
                return None, Failure(f"checksum mismatch (got {hasher.hexdigest()})")
            return buffer, None

        return self._first_answer(loc, attempt)

    def local_copy(self, locator: str | Locator) -> str:
        """For a `+R` (remote-signed) locator: ask this cluster's keepstore to copy the block here
        and return the locally signed locator (HEAD with `X-Keep-Signature: local`)."""
        loc = locator if isinstance(locator, Locator) else Locator.parse(locator)
        ask = {"X-Keep-Signature": f"local, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"}

        def attempt(service: KeepService) -> tuple[str | None, Failure | None]:
            resp, failure = self._open(service, loc, None, method="HEAD", headers=ask)
            if resp is None:
                return None, failure
            resp.release_conn()
            signed = resp.headers.get("X-Keep-Locator")
            return (signed, None) if signed else (None, Failure("HTTP 200 without X-Keep-Locator"))

        try:
            return self._first_answer(loc, attempt)
        except KeepError as exc:  # a missing block too: the copy failed, whatever the reason
            raise KeepReadError(f"could not copy remote block {loc.stripped} here: {exc}") from None

    # ------------------------------------------------------------ writes
    def put(self, data: bytes | bytearray | memoryview, replicas: int | None = None, md5: str | None = None) -> str:
        """Store `data` on enough services for `replicas` copies; returns the signed locator."""
        wanted = replicas or self.replicas
        md5 = md5 or hashlib.md5(data).hexdigest()
        writable = [s for s in self.services if not s.read_only and not s.service_type.startswith("gateway:")]
        order = rendezvous_order(md5, writable, lambda s: s.uuid)
        headers = self._headers({"X-Keep-Desired-Replicas": str(wanted), "Content-Type": "application/octet-stream"})
        if self.storage_classes:
            headers["X-Keep-Storage-Classes"] = ", ".join(self.storage_classes)
        stored = 0
        signed = ""
        failures: list[_Attempt] = []
        for service in order:
            if stored >= wanted:
                break

            def attempt(svc: KeepService) -> Failure | None:
                nonlocal stored, signed
                try:
                    resp = self._http.request("PUT", f"{svc.url}/{md5}+{len(data)}", body=data,  # type: ignore[arg-type]
                                              headers=headers)
                except urllib3.exceptions.HTTPError as exc:
                    return Failure(f"connection failed ({exc.__class__.__name__})", retry=True)
                if resp.status != 200:
                    return Failure.from_status(resp.status, _error_text(resp.data))
                signed = resp.data.decode().strip()
                stored += int(resp.headers.get("X-Keep-Replicas-Stored", "1"))
                return None

            errors, _ = self._with_retries([service], attempt)
            failures.extend(errors)
        if stored < wanted:
            raise KeepWriteError(
                f"stored {stored} of {wanted} replicas of {md5}+{len(data)}: {_describe(failures)}"
            )
        if self.cache is not None:  # a copy: callers reuse their buffers
            self.cache.put(md5, bytes(data))
        return signed

    # ------------------------------------------------------------ many blocks
    def get_many(self, locators: Iterable[str | Locator]) -> Iterator[bytes | bytearray]:
        """Blocks in the given order, fetched in parallel with at most max_workers in flight."""
        with ThreadPoolExecutor(self.max_workers) as pool:
            window: list[Future[bytes | bytearray]] = []
            for locator in locators:
                window.append(pool.submit(self.get, locator))
                if len(window) >= self.max_workers * 2:
                    yield window.pop(0).result()
            for future in window:
                yield future.result()

    def stream_blocks(self, locators: Iterable[str | Locator]) -> Iterator[memoryview]:
        """Blocks in order, fetched ahead in parallel into reused buffers.

        Each view is valid only until the next one is requested: its buffer is then reused
        (a fresh 64 MiB buffer per block costs page faults on every block).
        """
        free: list[bytearray] = []
        lock = Lock()

        def fetch(locator: str | Locator) -> tuple[bytearray | None, memoryview]:
            loc = locator if isinstance(locator, Locator) else Locator.parse(locator)
            if (loc.size or 0) <= POOLED_MIN:
                return None, memoryview(self.get(loc))
            with lock:
                buffer = free.pop() if free else bytearray(BLOCK_SIZE)
            return buffer, self.get_into(loc, buffer)

        with ThreadPoolExecutor(self.max_workers) as pool:
            window: deque[Future[tuple[bytearray | None, memoryview]]] = deque()
            for locator in locators:
                window.append(pool.submit(fetch, locator))
                if len(window) > self.max_workers:
                    buffer, view = window.popleft().result()
                    yield view
                    if buffer is not None:
                        with lock:
                            free.append(buffer)
            while window:
                yield window.popleft().result()[1]

    def uploader(self) -> ParallelUploader:
        return ParallelUploader(self)


class ParallelUploader:
    """Submits blocks for upload in the background; at most max_workers blocks wait in memory."""

    def __init__(self, client: KeepClient):
        self._client = client
        self._pool = ThreadPoolExecutor(client.max_workers)
        self._slots = BoundedSemaphore(client.max_workers * 2)

    def submit(self, data: bytes | memoryview) -> Future[str]:
        self._slots.acquire()
        future = self._pool.submit(self._client.put, data)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _raise_read_failure(loc: Locator, failures: list[_Attempt]) -> NoReturn:
    if failures and all(f.failure.status in (403, 404, 410) for f in failures):
        raise BlockNotFound(f"block {loc.stripped} not found: {_describe(failures)}")
    by_service: dict[str, list[Failure]] = {}
    for attempt in failures:
        by_service.setdefault(attempt.service.url, []).append(attempt.failure)
    corrupt = [url for url, seen in by_service.items() if _corrupt_copy(seen)]
    if corrupt:
        others = [url for url in by_service if url not in corrupt]
        raise KeepReadError(
            f"block {loc.stripped} is corrupt on {', '.join(corrupt)} (the bytes did not match its md5; a keepstore "
            "that finds this mid-transfer cuts it off and withdraws the copy); "
            + (f"no other copy could be read ({_describe([a for a in failures if a.service.url in others])})"
               if others else "no other service holds a copy"))
    raise KeepReadError(f"could not read block {loc.stripped}: {_describe(failures)}")


def _corrupt_copy(seen: list[Failure]) -> bool:
    """A service whose copy was bad: its bytes did not hash right, or it cut a transfer off and then
    no longer had the block (keepstore quarantines a copy it finds corrupt while sending it)."""
    if any("checksum mismatch" in f.reason for f in seen):  # ours, or the keepstore's (502)
        return True
    cut = [n for n, f in enumerate(seen) if f.reason.startswith("transfer interrupted")]
    return bool(cut) and any(f.status in (404, 410) for f in seen[cut[0] + 1:])


def _error_text(body: bytes) -> str:
    try:
        return "; ".join(json.loads(body)["errors"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip()
