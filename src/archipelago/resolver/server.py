"""`archi resolver --config FILE`: the resolver as a process of its own (its own database), serving
its API, polling its sites and saving what it heard every second, until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

from aiohttp import web

from .app import ResolverApp
from .config import ResolverConfig
from .poller import Poller
from .service import ResolverService
from .store import Store

SAVE_SECONDS = 1.0


async def serve_resolver(config: ResolverConfig, on_ready: Callable[[], None] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await asyncio.to_thread(lambda: ResolverService(config, Store(config.database_url)))
    runner = web.AppRunner(ResolverApp(service).app(), access_log=None, shutdown_timeout=0.3)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port, reuse_address=True).start()
    polling = asyncio.create_task(Poller(service).run(stop))
    if on_ready is not None:
        on_ready()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAVE_SECONDS)
            await asyncio.to_thread(service.save)
    finally:
        polling.cancel()
        await runner.cleanup()
