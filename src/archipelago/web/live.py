"""Wake-ups for a run page's live stream: a container request or container changed on some cluster.
This cluster's changes come from its own change hub; each peer's from that peer's change stream
(`/arvados/v1/events`), followed with the user's token salted for it, as the runner follows them.
Nothing of a change is passed on: the page is recomputed with the user's own permissions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

from ..backend.interface import Caller
from ..db.events import Event, EventHub
from ..errors import ArchipelagoError
from ..rpc import ApiConnection, ApiRequestError

KINDS = ("container_requests", "containers")
RETRY_SECONDS = 2.0


class Changes:
    def __init__(self, hub: EventHub | None, remotes: dict[str, Any], caller: Caller):
        self.hub, self.remotes, self.caller = hub, remotes, caller
        self._woken = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self._stop = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None

    def start(self) -> None:
        if self.hub is not None:
            self._unsubscribe = self.hub.subscribe(self._heard)
        for cluster, remote in self.remotes.items():
            threading.Thread(target=self._follow, args=(remote,), name=f"web-events-{cluster}", daemon=True).start()

    def _heard(self, event: Event) -> None:
        if event.kind in KINDS:
            self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the page's loop has closed
            self._loop.call_soon_threadsafe(self._woken.set)

    def _follow(self, remote: Any) -> None:
        connection = ApiConnection(remote.connection.base, remote.token_for(self.caller),
                                   transport=remote.connection.transport)
        while not self._stop.is_set():
            try:
                for _ in connection.events(list(KINDS)):
                    if self._stop.is_set():
                        return
                    self._wake()
            except ApiRequestError as exc:
                if exc.status in (401, 403, 501):  # no stream for this user or transport: the poll remains
                    return
                self._stop.wait(RETRY_SECONDS)
            except (ConnectionError, ArchipelagoError):
                self._stop.wait(RETRY_SECONDS)

    async def wait(self, timeout: float, settle: float = 0.2) -> None:
        """Until something changed (then a moment more, so a burst is one recomputation) or `timeout`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._woken.wait(), timeout)
            await asyncio.sleep(settle)
        self._woken.clear()

    def close(self) -> None:
        self._stop.set()
        if self._unsubscribe is not None:
            self._unsubscribe()
