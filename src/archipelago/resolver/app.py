"""The resolver's routes: parse, authenticate (a site's signature where one is needed), call the
service, render. Nothing else. Served by http.py (a request in, a `Reply` or an awaitable of one out).

    GET  /_health/ping                  and whether answers come from memory yet ("index": loading/ready/off)
    POST /resolver/v1/push              a site's changes and heartbeat; signed by the site
    GET  /resolver/v1/resolve?id=ID     who holds a published identifier, each site's liveness; anyone
    GET  /resolver/v1/contents/PDH      which sites hold a PDH; member sites only (signed)
    GET  /resolver/v1/sites             the sites, their modes, windows and liveness

Reads that SQLite answers from its index run on the event loop itself (cheaper than a hop to a
thread); a push, which writes, runs in a thread and is awaited.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import unquote

import orjson

from ..errors import ArchipelagoError, BadRequest
from .http import Reply, Request
from .service import ResolverService
from .signing import CONTENT, NONCE, SIGNATURE, SITE, TIME, Signed, verify
from .store import OutOfStep

log = logging.getLogger("archipelago.resolver")
MAX_BODY = 32 << 20
CONTENTS = "/resolver/v1/contents/"
PUSH = "/resolver/v1/push"
SIGNATURE_HEADERS = (SITE, TIME, NONCE, SIGNATURE, CONTENT)
Route = Callable[[Request], "Reply | Awaitable[Reply]"]


def _json(data: Any, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(data))


def _error(exc: ArchipelagoError) -> Reply:
    body: dict[str, Any] = {"errors": [str(exc)]}
    if isinstance(exc, OutOfStep):
        body["last_seq"] = exc.last_seq
    return Reply(exc.status, orjson.dumps(body), {"Retry-After": "1"} if exc.status == 503 else None)


class ResolverApp:
    def __init__(self, service: ResolverService, threads: int = 8):
        self.service = service
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="resolver")
        self._keys = service.config.keys()  # the configuration is fixed for the process's life
        self._routes: dict[tuple[str, str], Route] = {
            ("GET", "/_health/ping"): self.ping, ("POST", PUSH): self.push,
            ("GET", "/resolver/v1/resolve"): self.resolve, ("GET", "/resolver/v1/sites"): self.sites}

    def __call__(self, request: Request) -> Reply | Awaitable[Reply]:
        method = "GET" if request.method == "HEAD" else request.method
        try:
            path = request.path
            route = self._routes.get((method, path))
            if route is None and path.startswith(CONTENTS) and "/" not in path[len(CONTENTS):]:
                route = self.contents
            if route is None:
                known = any(p == path for _, p in self._routes) or path.startswith(CONTENTS)
                return _json({"errors": [f"{request.method} {path[:200]}: not a route of this resolver"]},
                             405 if known else 404)
            answer = route(request)
        except ArchipelagoError as exc:
            return _error(exc)
        return self._guarded(answer) if isinstance(answer, Awaitable) else answer

    def admit(self, request: Request) -> Reply | None:
        """A request with a body: only a push has one, and it is judged on its signed headers before its
        body (up to 32 MiB) is read: a stranger's is refused at once. The body is then checked against
        the hash that was signed. Any other request with a body is refused unread."""
        if request.method != "POST" or request.path != PUSH:
            return _json({"errors": [f"{request.method} {request.path[:200]}: only a push ({PUSH}) has a body"]},
                         413)
        try:
            verify(self._keys, self._signature(request), request.method, request.target, None,
                   self.service.config.clock_skew)
        except ArchipelagoError as exc:
            return _error(exc)
        return None

    @staticmethod
    async def _guarded(pending: Awaitable[Reply]) -> Reply:
        try:
            return await pending
        except ArchipelagoError as exc:
            return _error(exc)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, partial(fn, *args))

    @staticmethod
    def _signature(request: Request) -> dict[str, str]:
        return {name: request.headers.get(name.lower(), "") for name in SIGNATURE_HEADERS}

    def _signed(self, request: Request) -> Signed:
        return verify(self._keys, self._signature(request), request.method, request.target, request.body,
                      self.service.config.clock_skew)

    async def push(self, request: Request) -> Reply:
        signed = self._signed(request)
        try:
            parsed = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"a push is JSON: {exc}") from None
        return _json(await self._call(self.service.push, signed, parsed))

    def resolve(self, request: Request) -> Reply | Awaitable[Reply]:
        ident = request.query.get("id")
        if not ident:
            raise BadRequest("give the identifier: /resolver/v1/resolve?id=doi:10.1234/abc")
        store = self.service.store
        # from memory or an indexed SQLite read: cheaper than a hop to a thread; but a keep:PDH identifier
        # is also looked up by its content in the database, which on PostgreSQL is a round trip
        if store.inline_reads and (store.sqlite_path is not None or not ident.lower().startswith("keep:")):
            return _json(self.service.resolve(ident))
        return self._later(self.service.resolve, ident)

    def contents(self, request: Request) -> Reply | Awaitable[Reply]:
        signed = self._signed(request)
        pdh = unquote(request.target.partition("?")[0][len(CONTENTS):])
        if self.service.store.inline_reads:
            return _json(self.service.holders(signed, pdh))
        return self._later(self.service.holders, signed, pdh)

    async def _later(self, fn: Callable[..., Any], *args: Any) -> Reply:
        return _json(await self._call(fn, *args))

    def sites(self, request: Request) -> Reply:
        return _json({"sites": self.service.sites()})

    def ping(self, request: Request) -> Reply:
        return _json({"health": "OK", "index": self.service.store.index_state})
