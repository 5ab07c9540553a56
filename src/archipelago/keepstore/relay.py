"""Serving a block signed by another cluster (`+R<cluster>-…`, reference §8.1): fetched from that
cluster for this caller, relayed while it is verified, and cached on disk so the next read does
not cross. With `X-Keep-Signature: local` it is also stored here and `X-Keep-Locator` carries the
local signature, so the caller can save a collection that references it (§8.2)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from typing import Any, BinaryIO

from aiohttp import web

from ..errors import Unauthorized
from ..formats.locator import Locator
from .http import BLOCK_HEADERS, CHUNK, fork, request_token, run, send_block
from .service import KeepstoreState

log = logging.getLogger("archipelago.keepstore")


class RemoteRelay:
    def __init__(self, service: KeepstoreState):
        self.service = service
        self.remote = service.remote
        self._buffers: list[bytearray] = []  # CHUNK-sized, reused across relays

    async def serve(self, request: web.Request, locator: Locator) -> web.StreamResponse:
        token = request_token(request)
        if token is None:
            raise Unauthorized("missing token")
        headers = dict(BLOCK_HEADERS)
        store_locally = request.headers.get("X-Keep-Signature", "").split(",")[0].strip() == "local"
        if request.method == "GET" and not store_locally:
            if (cached := await run(self.remote.open_cached, locator)) is not None:
                return await self._send_cached(request, cached, headers)
            return await self._relay(request, locator, token, headers)
        if store_locally and request.method == "HEAD" and await run(self.service.store.stored, locator.md5):
            # the block is here already: only the caller's right to it is checked over there
            size = await run(self.remote.confirm, locator, token)
            headers["X-Keep-Locator"] = self.service.sign(locator.md5, size, token)
            headers["Content-Length"] = str(size)
            return web.Response(headers=headers)
        data = await run(self.remote.read, locator, token)
        if store_locally:
            await run(self.service.store.put, locator.md5, data)
            headers["X-Keep-Locator"] = self.service.sign(locator.md5, len(data), token)
        if request.method == "HEAD":
            headers["Content-Length"] = str(len(data))
            return web.Response(headers=headers)
        return await send_block(request, data, headers)

    async def _send_cached(self, request: web.Request, cached: BinaryIO, headers: dict[str, str]) -> web.StreamResponse:
        """A remote block from the cache, by sendfile like a local one (verified when it was cached)."""
        with cached:
            response = web.StreamResponse(headers=headers)
            response.content_length = os.fstat(cached.fileno()).st_size
            await response.prepare(request)
            await asyncio.get_running_loop().sendfile(request.transport, cached, 0,  # type: ignore[arg-type]
                                                      response.content_length)
            await response.write_eof()
            return response

    async def _relay(self, request: web.Request, locator: Locator, token: str,
                     headers: dict[str, str]) -> web.StreamResponse:
        """First read of a remote block: each piece is received, hashed and written to the cache file
        by a worker thread, then sent from that file by the kernel (sendfile) while the next piece
        arrives. The last piece goes out only once the md5 checks out (else the connection is cut),
        and the cache file becomes visible only then."""
        cluster_id, body = await run(self.remote.open, locator, token)
        buffer = self._buffers.pop() if self._buffers else bytearray(CHUNK)
        cache = self.remote.writer(locator)
        committed = False
        pulling: asyncio.Future[int] | None = None
        try:
            size = int(body.headers.get("Content-Length", locator.size or 0))
            hasher = hashlib.md5()
            received = [0]

            def pull() -> int:
                view = memoryview(buffer)[: min(CHUNK, size - received[0])]
                n: int = body.readinto(view) if view else 0
                hasher.update(view[:n])
                cache.write(view[:n])
                received[0] += n
                return n

            response = web.StreamResponse(headers=headers)
            response.content_length = size
            await response.prepare(request)
            loop = asyncio.get_running_loop()
            sent = 0
            pulling = fork(pull)
            while sent < size:
                n = await pulling
                if n == 0 or (sent + n == size and hasher.hexdigest() != locator.md5):
                    log.error("relay of %s from %s failed its check: cutting the connection", locator.md5, cluster_id)
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if sent + n < size:  # receive the next piece while the kernel sends this one
                    pulling = fork(pull)
                await loop.sendfile(request.transport, cache.file, sent, n)  # type: ignore[arg-type]
                sent += n
            await run(cache.commit)
            committed = True
            self.remote.count(cluster_id, size)
            await response.write_eof()
            return response
        finally:
            await self._release(pulling, committed, cache, body, buffer)

    async def _release(self, pulling: asyncio.Future[int] | None, committed: bool, cache: Any, body: Any,
                       buffer: bytearray) -> None:
        if pulling is not None and not pulling.done():  # it writes into the buffer and the cache file
            with contextlib.suppress(Exception):
                await pulling
        if not committed:
            await run(cache.abort)
        self._buffers.append(buffer)
        body.release_conn()
