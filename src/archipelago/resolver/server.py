"""`archi resolver --config FILE`: the resolver as a process of its own (its own database), serving
its API, polling its sites and saving what it heard every second, until SIGTERM or SIGINT. On uvloop
when it is installed (it comes with uvicorn[standard]): the same loop, less of it per request."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable

from .app import MAX_BODY, ResolverApp
from .config import ResolverConfig
from .http import HttpServer
from .identifiers import parse_identifier
from .index import MemoryIndex
from .poller import Poller
from .service import ResolverService
from .store import Store

SAVE_SECONDS = 1.0
log = logging.getLogger("archipelago.resolver")


async def serve_resolver(config: ResolverConfig, on_ready: Callable[[], None] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    service = await asyncio.to_thread(lambda: ResolverService(config, Store(config.database_url)))
    await asyncio.to_thread(parse_identifier, "doi:10.1000/ready")  # imports idutils now, not in an answer
    # and the Bioregistry (a second of imports and loading) while it starts serving: a compact id
    # asked meanwhile waits for it, one asked later does not stop the loop for it
    threading.Thread(target=_warm_compact_ids, name="resolver-bioregistry", daemon=True).start()
    server = HttpServer(ResolverApp(service), MAX_BODY)
    await server.start(config.host, config.port)
    polling = asyncio.create_task(Poller(service).run(stop))
    if config.memory_index:  # answers come from SQL until the index is read (a million registrations: seconds)
        service.store.index = MemoryIndex()  # "loading" from now on: changes are kept for it
        threading.Thread(target=_load_index, args=(service.store,), name="resolver-index", daemon=True).start()
    if on_ready is not None:
        on_ready()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAVE_SECONDS)
            await asyncio.to_thread(service.save)
    finally:
        polling.cancel()
        await server.close()


def _warm_compact_ids() -> None:
    with contextlib.suppress(Exception):  # a broken registry shows in the answers that need it
        parse_identifier("ega.dataset:EGAD00001000001")


def _load_index(store: Store) -> None:
    try:
        store.load_index()
    except Exception:  # answers stay with SQL
        log.exception("the index in memory could not be loaded; answering from the database")


def run_resolver(config: ResolverConfig, on_ready: Callable[[], None] | None = None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        asyncio.run(serve_resolver(config, on_ready))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve_resolver(config, on_ready))
