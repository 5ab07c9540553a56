"""Writing a block: to keepstores in rendezvous order until enough replicas are stored, or to one
named service (a gateway taking a block moved to its store)."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from threading import BoundedSemaphore
from typing import TYPE_CHECKING

from .attempts import first_answer
from .errors import KeepWriteError, ServiceFailure, describe
from .md5 import md5_hex
from .services import KeepService, write_order

if TYPE_CHECKING:
    from .client import KeepClient

Data = bytes | bytearray | memoryview


def store(client: KeepClient, data: Data, replicas: int | None = None, md5: str | None = None) -> str:
    """Store `data` on enough keepstores for `replicas` copies; returns the signed locator."""
    wanted = replicas or client.replicas
    md5 = md5 or md5_hex(data)
    headers = {"X-Keep-Desired-Replicas": str(wanted)}
    if client.storage_classes:
        headers["X-Keep-Storage-Classes"] = ", ".join(client.storage_classes)
    stored = 0
    signed = ""
    failures: list[ServiceFailure] = []
    for service in write_order(md5, client.services):
        if stored >= wanted:
            break
        answer, failed = first_answer([service], lambda s: _put(client, s, md5, data, headers), client.retries,
                                      client.backoff)
        failures.extend(failed)
        if answer is not None:
            signed = answer[0]
            stored += answer[1]
    if stored < wanted:
        raise KeepWriteError(f"stored {stored} of {wanted} replicas of {md5}+{len(data)}: {describe(failures)}",
                             failures)
    return signed


def store_on(client: KeepClient, service: KeepService, data: Data) -> str:
    """Store `data` on this one service (e.g. a gateway); its signed locator there."""
    md5 = md5_hex(data)
    answer, failures = first_answer([service], lambda s: _put(client, s, md5, data, {}), client.retries,
                                    client.backoff)
    if answer is None:
        raise KeepWriteError(f"{service.uuid} did not store block {md5}+{len(data)}: {describe(failures)}",
                             failures)
    return answer[0]


def _put(client: KeepClient, service: KeepService, md5: str, data: Data,
         headers: dict[str, str]) -> tuple[str, int] | ServiceFailure:
    """(signed locator, replicas stored) from one service, or why not."""
    answer = client.http.ask(service.url, "PUT", f"{md5}+{len(data)}",
                             client.headers({"Content-Type": "application/octet-stream", **headers}), body=data)
    if isinstance(answer, ServiceFailure):
        return answer
    try:
        return answer.read().decode().strip(), int(answer.headers.get("X-Keep-Replicas-Stored", "1"))
    finally:
        answer.release_conn()


class ParallelUploader:
    """Submits blocks for upload in the background; at most 2 × max_workers blocks wait in memory."""

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
