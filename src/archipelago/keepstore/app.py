"""keepstore: the HTTP block server (reference §4.1), on aiohttp. This module only routes; what
each route does lives beside it (reads, relay, writes, admin), what keepstore decides before a
byte moves in service.py, and where blocks live in store.py and volumes/.

aiohttp because it moves 64 MiB bodies over loopback about four times faster than the ASGI stack
(machine-notes §8), and this is the hot path.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from aiohttp import web

from ..config import ClusterConfig
from ..formats.locator import BLOCK_SIZE, EMPTY_HASH, Locator
from .admin import Admin
from .http import CORS_HEADERS, keep_errors
from .reads import LocalReads
from .relay import RemoteRelay
from .service import KeepstoreState
from .store import BlockStore
from .tokens import TOKEN_CACHE_SECONDS, Authenticate, TokenCheck, api_authenticator
from .workers import Workers
from .writes import put_block

BLOCK_PATH = r"/{locator:/?[0-9a-f]{32}[^/]*}"


class Keepstore:
    """`authenticate`: the cluster's own token validation when keepstore runs in its process (it
    caches, so nothing is cached here); without it, the cluster's API is asked (keepstore/tokens.py)."""

    def __init__(self, config: ClusterConfig, store: BlockStore,
                 restricted_blocks: Callable[[], set[str]] | None = None, authenticate: Authenticate | None = None):
        tokens = TokenCheck(config.system_root_token, authenticate) if authenticate is not None else \
            TokenCheck(config.system_root_token, api_authenticator(config), TOKEN_CACHE_SECONDS)
        self.service = KeepstoreState(config, store, tokens)
        self.reads = LocalReads(self.service)
        self.relay = RemoteRelay(self.service)
        self.workers = Workers(self.service, restricted_blocks)
        self.admin = Admin(self.service, self.workers.wake_puller)

    async def get(self, request: web.Request) -> web.StreamResponse:
        raw = request.match_info["locator"].lstrip("/")
        locator = Locator.parse(raw, require_size=request.method == "GET" and not raw.startswith(EMPTY_HASH))
        if locator.hint("R") is not None and locator.signature is None:
            return await self.relay.serve(request, locator)
        return await self.reads.serve(request, locator)

    async def put(self, request: web.Request) -> web.Response:
        return await put_block(self.service, request)

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(headers=CORS_HEADERS)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[keep_errors], client_max_size=BLOCK_SIZE + 1)
        admin = self.admin
        app.router.add_route("GET", "/index", admin.index)
        app.router.add_route("GET", r"/index/{prefix:[0-9a-f]{0,32}}", admin.index)
        app.router.add_route("GET", "/mounts", admin.mounts)
        app.router.add_route("GET", "/metrics", admin.metrics)
        app.router.add_route("GET", "/mounts/{uuid}/blocks", admin.index)
        app.router.add_route("GET", r"/mounts/{uuid}/blocks/{prefix:[0-9a-f]{0,32}}", admin.index)
        app.router.add_route("PUT", "/trash", admin.trash)
        app.router.add_route("PUT", "/pull", admin.pull)
        app.router.add_route("PUT", "/untrash/{locator}", admin.untrash)
        app.router.add_route("GET", BLOCK_PATH, self.get)
        app.router.add_route("HEAD", BLOCK_PATH, self.get)
        app.router.add_route("PUT", r"/{locator:[0-9a-f]{32}[^/]*}", self.put)
        app.router.add_route("OPTIONS", "/{tail:.*}", self.options)
        app.on_startup.append(self.workers.start)
        app.on_cleanup.append(self.workers.stop)
        return app


def create_app(config: ClusterConfig, store: BlockStore, restricted_blocks: Callable[[], set[str]] | None = None,
               authenticate: Authenticate | None = None) -> web.Application:
    return Keepstore(config, store, restricted_blocks, authenticate).app()


class ServerThread:
    """An aiohttp app served on loopback from a background thread (tests, the demo, benchmarks)."""

    def __init__(self, app: web.Application, host: str = "127.0.0.1", port: int = 0):
        self._app, self._host, self._port = app, host, port
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def __enter__(self) -> ServerThread:
        started = threading.Event()

        async def start() -> None:
            self._runner = web.AppRunner(self._app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self._host, self._port)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://{self._host}:{port}"
            started.set()

        def serve() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(start())
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True, name="keepstore")
        self._thread.start()
        if not started.wait(30):
            raise RuntimeError("server did not start within 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)


def serve(config: ClusterConfig, host: str | None = None, port: int | None = None,
          on_ready: Callable[[str], None] | None = None, authenticate: Authenticate | None = None) -> None:
    """Run keepstore in the foreground until interrupted."""
    app = create_app(config, BlockStore.from_config(config), authenticate=authenticate)
    host = host or config.keepstore.host
    port = config.keepstore.port if port is None else port

    async def announce(_: web.Application) -> None:
        if on_ready:
            on_ready(f"http://{host}:{port}")

    app.on_startup.append(announce)
    web.run_app(app, host=host, port=port, print=None, access_log=None, handle_signals=True,
                shutdown_timeout=0.5)
