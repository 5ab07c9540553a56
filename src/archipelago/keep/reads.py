"""Reading a block: each service in read order until one sends bytes that hash to the locator;
also a HEAD (does a service hold it, and may this caller read it) and the open answer a relay
passes on while it hashes."""

from __future__ import annotations

import mmap
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, cast

from ..formats.locator import Locator
from .errors import BlockNotFound, CorruptCopy, CutShort, KeepReadError, ServiceFailure, ServiceRefused
from .http import BodyError, Response, read_into
from .md5 import new_md5
from .services import KeepService

if TYPE_CHECKING:
    from .client import KeepClient

Buffer = bytearray | mmap.mmap  # a block received into a caller's pooled buffer, or a fresh one
READ_CHUNK = 1 << 20
HASH_CHUNK = 4 << 20
ACCEPT = {"Accept": "application/octet-stream"}


def fetch(client: KeepClient, loc: Locator, into: Buffer | None, token: str | None = None,
          order: list[KeepService] | None = None) -> Buffer:
    """The block's bytes, verified against its md5, received into `into` if it is large enough."""
    def attempt(service: KeepService) -> Buffer | ServiceFailure:
        answer = client.http.ask(service.url, "GET", str(loc), client.headers(ACCEPT, token))
        if isinstance(answer, ServiceFailure):
            return answer
        return receive_verified(answer, service.url, loc, into, client.hashers)

    return cast(Buffer, client.from_first_service(loc, attempt, order))  # T of a union is beyond mypy


def receive_verified(answer: Response, service: str, loc: Locator, into: Buffer | None,
                     hashers: ThreadPoolExecutor) -> Buffer | ServiceFailure:
    """The body received straight into one buffer and hashed as it arrives (in another thread: md5
    releases the GIL). On a machine where a 64 MiB memcpy costs as much as hashing it, every avoided
    copy shows in the throughput."""
    try:
        size = int(answer.headers.get("Content-Length", loc.size or 0))
        if loc.size is not None and size != loc.size:
            return CorruptCopy(service, f"size mismatch (server sent {size} bytes)")
        buffer: Buffer = into if into is not None and len(into) >= size else bytearray(size)
        view = memoryview(buffer)
        hasher = new_md5()  # in lanes with the other blocks being received (md5.py)
        received = hashed = 0
        hashing: Future[None] | None = None
        try:
            while received < size:
                n = read_into(answer, view[received : min(size, received + READ_CHUNK)])
                if not n:
                    return CutShort(service, f"transfer interrupted after {received} of {size} bytes")
                received += n
                if received - hashed >= HASH_CHUNK or received == size:
                    if hashing is not None:
                        hashing.result()
                    hashing = hashers.submit(hasher.update, view[hashed:received])
                    hashed = received
        finally:
            if hashing is not None:
                hashing.result()
    except BodyError as exc:
        return CutShort(service, f"transfer interrupted ({exc.__class__.__name__})")
    finally:
        answer.release_conn()
    if hasher.hexdigest() != loc.md5:
        return CorruptCopy(service, f"checksum mismatch (got {hasher.hexdigest()})")
    return buffer


def open_body(client: KeepClient, loc: Locator, token: str | None = None) -> Response:
    """The open answer of the first service that has the block; not verified (for relays that hash
    what they pass on). The caller releases it."""
    return client.from_first_service(
        loc, lambda service: client.http.ask(service.url, "GET", str(loc), client.headers(ACCEPT, token)))


def head(client: KeepClient, loc: Locator, token: str | None = None, order: list[KeepService] | None = None) -> int:
    """The block's size, if a service has it and accepts the locator's signature (no bytes move)."""
    def attempt(service: KeepService) -> int | ServiceFailure:
        answer = client.http.ask(service.url, "HEAD", str(loc), client.headers(ACCEPT, token))
        if isinstance(answer, ServiceFailure):
            return answer
        answer.release_conn()
        return int(answer.headers.get("Content-Length", loc.size or 0))

    return client.from_first_service(loc, attempt, order)


def local_copy(client: KeepClient, loc: Locator) -> str:
    """For a `+R` (remote-signed) locator: ask this cluster's keepstore to copy the block here and
    return the locally signed locator (HEAD with `X-Keep-Signature: local`)."""
    ask = {**ACCEPT, "X-Keep-Signature": f"local, {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"}

    def attempt(service: KeepService) -> str | ServiceFailure:
        answer = client.http.ask(service.url, "HEAD", str(loc), client.headers(ask))
        if isinstance(answer, ServiceFailure):
            return answer
        answer.release_conn()
        signed = answer.headers.get("X-Keep-Locator")
        return signed or ServiceRefused(service.url, "HTTP 200 without X-Keep-Locator", 200)

    try:
        return client.from_first_service(loc, attempt)
    except (BlockNotFound, KeepReadError) as exc:  # a missing block too: the copy failed, whatever the reason
        raise KeepReadError(f"could not copy remote block {loc.stripped} here: {exc}", exc.failures) from None
