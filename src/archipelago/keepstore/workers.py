"""keepstore's background loops: the pull worker (copies blocks keep-balance asks for), the trash
emptier, and the refresh of the residency block list from the cluster database."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from ..formats.locator import Locator
from ..keep.client import KeepClient
from ..keep.errors import KeepError
from ..keep.services import from_urls
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
        # the keep client every block transfer goes through, run in worker threads; the servers
        # to pull from are named by each request, so it starts with none
        client = KeepClient([], PULL_TOKEN, cache=None, retries=1, max_workers=1)
        while True:
            await self._pull_wakeup.wait()
            self._pull_wakeup.clear()
            while self.service.pull_queue:
                await self._pull_one(client, self.service.pull_queue.pop(0))

    async def _pull_one(self, client: KeepClient, item: dict[str, Any]) -> None:
        """Copy one block here from the first of its servers that sends it whole and verified."""
        locator = Locator.parse(item["locator"])
        signed = self.service.sign(locator.md5, locator.size or 0, PULL_TOKEN)
        try:
            data = await run(client.get_from, from_urls(item["servers"]), signed)
            await run(self.service.store.put, locator.md5, data)
        except KeepError as exc:  # no server sent it, or no volume here took it: the next pull list asks again
            log.warning("pull of %s failed: %s", locator, exc)
            return
        log.info("pulled %s", locator)

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
