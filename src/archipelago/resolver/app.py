"""The resolver's HTTP layer (aiohttp, like keepstore: small handlers on one event loop): parse,
authenticate (a site's signature where one is needed), call the service, render. Nothing else.

    GET  /_health/ping
    POST /resolver/v1/push              a site's changes and heartbeat; signed by the site
    GET  /resolver/v1/resolve?id=ID     who holds a published identifier, each site's liveness; anyone
    GET  /resolver/v1/contents/PDH      which sites hold a PDH; member sites only (signed)
    GET  /resolver/v1/sites             the sites, their modes, windows and liveness
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import orjson
from aiohttp import web

from ..errors import ArchipelagoError, BadRequest
from .service import ResolverService
from .signing import verify
from .store import OutOfStep

log = logging.getLogger("archipelago.resolver")
MAX_BODY = 32 << 20
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _error(exc: ArchipelagoError) -> web.Response:
    body: dict[str, Any] = {"errors": [str(exc)]}
    if isinstance(exc, OutOfStep):
        body["last_seq"] = exc.last_seq
    response = _json(body, exc.status)
    if exc.status == 503:
        response.headers["Retry-After"] = "1"
    return response


class ResolverApp:
    def __init__(self, service: ResolverService, threads: int = 8):
        self.service = service
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="resolver")

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, partial(fn, *args))

    @staticmethod
    def _guarded(handler: Handler) -> Handler:
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except ArchipelagoError as exc:
                return _error(exc)

        return run

    async def _signed(self, request: web.Request, body: bytes = b"") -> Any:
        return verify(self.service.config.keys(), request.headers, request.method, request.raw_path, body,
                      self.service.config.clock_skew)

    async def push(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise BadRequest(f"a push is at most {MAX_BODY} bytes")
        body = await request.content.read(MAX_BODY + 1)
        if len(body) > MAX_BODY:
            raise BadRequest(f"a push is at most {MAX_BODY} bytes")
        signed = await self._signed(request, body)
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"a push is JSON: {exc}") from None
        return _json(await self._call(self.service.push, signed, parsed))

    async def resolve(self, request: web.Request) -> web.Response:
        ident = request.query.get("id")
        if not ident:
            raise BadRequest("give the identifier: /resolver/v1/resolve?id=doi:10.1234/abc")
        if self.service.store.inline_reads:  # an indexed SQLite read: cheaper than a hop to a thread
            return _json(self.service.resolve(ident))
        return _json(await self._call(self.service.resolve, ident))

    async def contents(self, request: web.Request) -> web.Response:
        signed = await self._signed(request)
        if self.service.store.inline_reads:
            return _json(self.service.holders(signed, request.match_info["pdh"]))
        return _json(await self._call(self.service.holders, signed, request.match_info["pdh"]))

    async def sites(self, request: web.Request) -> web.Response:
        return _json({"sites": self.service.sites()})

    async def ping(self, request: web.Request) -> web.Response:
        return _json({"health": "OK"})

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        g = self._guarded
        app.router.add_get("/_health/ping", g(self.ping))
        app.router.add_post("/resolver/v1/push", g(self.push))
        app.router.add_get("/resolver/v1/resolve", g(self.resolve))
        app.router.add_get("/resolver/v1/contents/{pdh}", g(self.contents))
        app.router.add_get("/resolver/v1/sites", g(self.sites))
        return app
