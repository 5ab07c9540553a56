"""Storing a block (PUT /<md5>): the body is hashed and written in pieces as it arrives, and
becomes visible only when its md5 matches (a half-written block is never seen). Large plain-TCP
bodies are read off the socket directly (receive.py); others through aiohttp."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ..errors import ArchipelagoError, Unavailable
from ..formats.locator import BLOCK_SIZE, Locator
from ..keep.errors import BlockTooLarge, HashMismatch
from .http import CHUNK, CORS_HEADERS, error_for, fork, request_token, run
from .receive import RECEIVERS, ClientGone, DirectBody
from .service import KeepstoreState
from .store import PutResult, PutTransaction
from .tokens import SYSTEM

__all__ = ["ClientGone", "put_block"]


async def _body_batches(request: web.Request, stall_seconds: float) -> AsyncIterator[list[bytes]]:
    """The body as lists of the pieces the socket delivered, about CHUNK bytes per list; a client
    that sends nothing for `stall_seconds` is dropped.

    Handing over lists rather than joined chunks spares a copy of the whole block.
    """
    batch: list[bytes] = []
    size = 0
    while True:
        try:
            piece = await asyncio.wait_for(request.content.readany(), stall_seconds)
        except TimeoutError:
            raise ClientGone(f"client sent nothing for {stall_seconds:g} s") from None
        if not piece:
            break
        batch.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def put_block(service: KeepstoreState, request: web.Request) -> web.Response:
    """Checks first (token, size, a free slot), then the body; nothing is held for a request refused."""
    locator = Locator.parse(request.match_info["locator"], require_size=False)
    token = request_token(request)
    holder = await service.tokens.require(token)  # a valid token, even unsigned: else anyone could fill the disk
    limit, share = service.config.keepstore.max_concurrent_puts, service.config.keepstore.max_concurrent_puts_per_user
    if service.puts_in_progress >= limit:
        raise Unavailable(f"keepstore is busy: {limit} blocks are being written; retry shortly")
    if holder != SYSTEM and service.puts_by_holder[holder] >= share:  # one user's stalled uploads starve nobody
        raise Unavailable(f"you are writing {share} blocks here already; retry when one has finished")
    service.puts_in_progress += 1
    service.puts_by_holder[holder] += 1
    try:
        return await _store(service, request, locator, token)
    finally:
        service.puts_in_progress -= 1
        service.puts_by_holder[holder] -= 1
        if not service.puts_by_holder[holder]:
            del service.puts_by_holder[holder]


async def _store(service: KeepstoreState, request: web.Request, locator: Locator, token: str | None) -> web.Response:
    length = request.content_length
    if length is not None and length > BLOCK_SIZE:
        raise BlockTooLarge(f"block of {length} bytes exceeds the {BLOCK_SIZE}-byte limit")
    if length is not None and locator.size is not None and locator.size != length:
        raise HashMismatch(f"Content-Length {length} does not match the locator size {locator.size}")
    header = request.headers.get("X-Keep-Storage-Classes", "")
    classes = [c.strip() for c in header.split(",") if c.strip()] or None
    if length is not None and (direct := DirectBody.take(request)) is not None:
        return await _store_direct(service, direct, locator, token, length, classes)
    txn = None  # begun when the first bytes arrive: a client that stalls at once holds no file
    try:
        received = 0
        pending: list[asyncio.Future[None]] = []
        async for batch in _body_batches(request, service.config.keepstore.body_read_timeout):
            if txn is None:
                txn = await run(service.store.begin_put, locator.md5, classes)
            if pending:  # the previous batch's hash and write, which ran while this one arrived
                await asyncio.gather(*pending)
            received += sum(map(len, batch))
            if received > BLOCK_SIZE:
                raise BlockTooLarge(f"block larger than {BLOCK_SIZE} bytes")
            pending = [fork(txn.hash_pieces, batch), fork(txn.write_pieces, batch)]
        await asyncio.gather(*pending)
        if length is not None and received != length:
            raise ClientGone(f"client went away after {received} of {length} bytes")
        if txn is None:  # an empty body
            txn = await run(service.store.begin_put, locator.md5, classes)
        result = await run(txn.finish)
    except (asyncio.IncompleteReadError, ConnectionError):
        if txn is not None:
            await run(txn.abort)
        raise ClientGone("client went away before sending the whole block") from None
    except BaseException:
        if txn is not None:
            await run(txn.abort)
        raise
    return _stored(service, locator, txn, token, result)


async def _store_direct(service: KeepstoreState, direct: DirectBody, locator: Locator, token: str | None, length: int,
                        classes: list[str] | None) -> web.Response:
    """The body read off the socket (receive.py); the connection closes after the answer, errors too."""
    txn = None
    try:
        txn = await run(service.store.begin_put, locator.md5, classes)
        await asyncio.get_running_loop().run_in_executor(
            RECEIVERS, direct.receive, length, txn, service.config.keepstore.body_read_timeout)
        result = await run(txn.finish)
        response = _stored(service, locator, txn, token, result)
    except ArchipelagoError as exc:
        if txn is not None:
            await run(txn.abort)
        response = error_for(exc)
    except BaseException:
        if txn is not None:
            await run(txn.abort)
        raise
    finally:
        direct.release()
    response.force_close()
    return response


def _stored(service: KeepstoreState, locator: Locator, txn: PutTransaction, token: str | None,
            result: PutResult) -> web.Response:
    signed = service.sign(locator.md5, txn.size, token)
    return web.Response(text=signed + "\n", headers={
        **CORS_HEADERS,
        "X-Keep-Replicas-Stored": str(result.replicas),
        "X-Keep-Storage-Classes-Confirmed": result.classes_header,
    })
