"""keepstore's background loops: the pull worker (copies blocks keep-balance asks for), the trash
emptier, and the refresh of the residency block list from the cluster database."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from ..formats.locator import Locator
from .http import run
from .service import BlockAccess, KeepstoreState

log = logging.getLogger("archipelago.keepstore")

PULL_TOKEN = "keepstore-token-used-for-pulling-data-from-same-cluster"
RESIDENCY_REFRESH_SECONDS = 1.0


class Workers:
    def __init__(self, service: KeepstoreState, restricted_blocks: Callable[[], set[str]] | None):
        self.service = service
        self._load_restricted = restricted_blocks
        self._tasks: list[asyncio.Task[None]] = []
        self._pull_wakeup: asyncio.Event | None = None

    def wake_puller(self) -> None:
        if self._pull_wakeup is not None:
            self._pull_wakeup.set()

    async def start(self, app: Any = None) -> None:
        self._pull_wakeup = asyncio.Event()
        self._tasks = [asyncio.create_task(self._pull_worker())]
        if self.service.config.collections.blob_trash:
            self._tasks.append(asyncio.create_task(self._trash_emptier()))
        if self._load_restricted is not None:
            self._tasks.append(asyncio.create_task(refresh_restricted(self.service, self._load_restricted)))

    async def stop(self, app: Any = None) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _pull_worker(self) -> None:
        assert self._pull_wakeup is not None
        async with aiohttp.ClientSession() as session:
            while True:
                await self._pull_wakeup.wait()
                self._pull_wakeup.clear()
                while self.service.pull_queue:
                    await self._pull_one(session, self.service.pull_queue.pop(0))

    async def _pull_one(self, session: aiohttp.ClientSession, item: dict[str, Any]) -> None:
        locator = Locator.parse(item["locator"])
        signed = self.service.sign(locator.md5, locator.size or 0, PULL_TOKEN)
        for server in item["servers"]:
            try:
                async with session.get(f"{server.rstrip('/')}/{signed}",
                                       headers={"Authorization": f"Bearer {PULL_TOKEN}"}) as resp:
                    if resp.status != 200:
                        continue
                    data = await resp.read()
                if hashlib.md5(data).hexdigest() != locator.md5:
                    continue
                await run(self.service.store.put, locator.md5, data)
                log.info("pulled %s from %s", locator, server)
                return
            except Exception as exc:
                log.warning("pull of %s from %s failed: %s", locator, server, exc)

    async def _trash_emptier(self) -> None:
        import time

        while True:
            deleted = await run(self.service.store.empty_trash, time.time())
            if deleted:
                log.info("deleted %d expired trashed blocks", deleted)
            await asyncio.sleep(self.service.config.collections.blob_trash_check_interval)


async def refresh_restricted(access: BlockAccess, load: Callable[[], set[str]]) -> None:
    """Keep `access.restricted` (the blocks of collections under a residency policy) fresh, for
    keepstore and for the gateways alike."""
    while True:
        try:
            access.restricted = await run(load)
        except Exception as exc:
            log.error("could not refresh the residency block list: %s", exc)
        await asyncio.sleep(RESIDENCY_REFRESH_SECONDS)
