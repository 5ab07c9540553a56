"""Serving a block signed by another cluster (`+R<cluster>-…`, reference §8.1): fetched from that
cluster for this caller, relayed while it is verified, and cached on disk so the next read does
not cross. With `X-Keep-Signature: local` it is also stored here and `X-Keep-Locator` carries the
local signature, so the caller can save a collection that references it (§8.2)."""

from __future__ import annotations

import logging
import os
from typing import BinaryIO

from aiohttp import web

from ..errors import Unauthorized
from ..formats.locator import Locator
from .http import BLOCK_HEADERS, request_token, run, send_block
from .relay_pipe import RelayPipe, RemoteCutShort, send_cached
from .service import KeepstoreState

log = logging.getLogger("archipelago.keepstore")


class RemoteRelay:
    def __init__(self, service: KeepstoreState):
        self.service = service
        self.remote = service.remote

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
        """A remote block from the cache (verified when it was cached), read off the disk in a worker
        thread while the previous piece is sent (relay_pipe.send_cached)."""
        with cached:
            response = web.StreamResponse(headers=headers)
            response.content_length = size = os.fstat(cached.fileno()).st_size
            await response.prepare(request)
            if not await send_cached(response, cached.fileno(), size):
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write_eof()
            return response

    async def _relay(self, request: web.Request, locator: Locator, token: str,
                     headers: dict[str, str]) -> web.StreamResponse:
        """First read of a remote block: received, hashed, cached and sent at once (relay_pipe.py);
        the last piece goes out only once the md5 checks out (else the connection is cut), and the
        cache entry becomes visible only then."""
        cluster_id, body = await run(self.remote.open, locator, token)
        cache = self.remote.writer(locator)
        pipe: RelayPipe | None = None
        committed = False
        try:
            size = int(body.headers.get("Content-Length", locator.size or 0))
            pipe = RelayPipe(body, size, locator.md5, cache)
            response = web.StreamResponse(headers=headers)
            response.content_length = size
            await response.prepare(request)

            async def cache_and_count() -> None:
                nonlocal committed
                await run(cache.commit)
                committed = True
                self.remote.count(cluster_id, size)

            try:
                verified = await pipe.run(response, cache_and_count)
            except RemoteCutShort as exc:
                log.error("relay of %s from %s: %s", locator.md5, cluster_id, exc)
                verified = False
            if not verified:
                log.error("relay of %s from %s failed its check: cutting the connection", locator.md5, cluster_id)
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write_eof()
            return response
        finally:
            if pipe is not None:
                pipe.close()
            if not committed:
                await run(cache.abort)
            body.release_conn()
