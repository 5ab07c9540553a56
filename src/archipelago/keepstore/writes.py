"""Storing a block (PUT /<md5>): the body is hashed and written in pieces as it arrives, and
becomes visible only when its md5 matches (a half-written block is never seen)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from ..formats.locator import BLOCK_SIZE, Locator
from ..keep.errors import BlockTooLarge, HashMismatch, KeepError
from .http import CHUNK, CORS_HEADERS, fork, request_token, run
from .service import KeepService


class ClientGone(KeepError):
    status = 499


async def _body_batches(request: web.Request) -> AsyncIterator[list[bytes]]:
    """The body as lists of the pieces the socket delivered, about CHUNK bytes per list.

    Handing over lists rather than joined chunks spares a copy of the whole block.
    """
    batch: list[bytes] = []
    size = 0
    async for piece in request.content.iter_any():
        batch.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


async def put_block(service: KeepService, request: web.Request) -> web.Response:
    locator = Locator.parse(request.match_info["locator"], require_size=False)
    length = request.content_length
    if length is not None and length > BLOCK_SIZE:
        raise BlockTooLarge(f"block of {length} bytes exceeds the {BLOCK_SIZE}-byte limit")
    if length is not None and locator.size is not None and locator.size != length:
        raise HashMismatch(f"Content-Length {length} does not match the locator size {locator.size}")
    header = request.headers.get("X-Keep-Storage-Classes", "")
    classes = [c.strip() for c in header.split(",") if c.strip()] or None
    txn = await run(service.store.begin_put, locator.md5, classes)
    try:
        received = 0
        pending: list[asyncio.Future[None]] = []
        async for batch in _body_batches(request):
            if pending:  # the previous batch's hash and write, which ran while this one arrived
                await asyncio.gather(*pending)
            received += sum(map(len, batch))
            if received > BLOCK_SIZE:
                raise BlockTooLarge(f"block larger than {BLOCK_SIZE} bytes")
            pending = [fork(txn.hash_pieces, batch), fork(txn.write_pieces, batch)]
        await asyncio.gather(*pending)
        if length is not None and received != length:
            raise ClientGone(f"client went away after {received} of {length} bytes")
        result = await run(txn.finish)
    except (asyncio.IncompleteReadError, ConnectionError):
        await run(txn.abort)
        raise ClientGone("client went away before sending the whole block") from None
    except BaseException:
        await run(txn.abort)
        raise
    signed = service.sign(locator.md5, txn.size, request_token(request))
    return web.Response(text=signed + "\n", headers={
        **CORS_HEADERS,
        "X-Keep-Replicas-Stored": str(result.replicas),
        "X-Keep-Storage-Classes-Confirmed": result.classes_header,
    })
