"""Waking the steps that wait for their containers: each cluster a step runs on is followed on its
own change stream (with the user's token salted for it). A change wakes the waiters, and each looks
again only if the change was to its own request or container (a thousand waiting steps do not all
ask about one step's news). The changes are counted, so one that arrives while a step is looking at
its request (between its GET and its sleep) is not slept through. Where a stream cannot be had,
waiting falls back to polling.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient

log = logging.getLogger("archipelago.cwl")


class Changes:
    def __init__(self, client_for: Callable[[str], ApiClient]):
        self._client_for = client_for
        self._changed = threading.Condition()
        self._count = 0
        self._last: dict[str, int] = {}  # uuid -> the count when it last changed
        self._everything = 0  # the count when something unnamed changed
        self._followed: set[str] = set()
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def seen(self) -> int:
        """The changes heard of so far (to wait for one after this)."""
        with self._changed:
            return self._count

    def wait(self, seen: int, timeout: float, uuids: set[str] | None = None) -> int:
        """Until a change after `seen` (to one of `uuids`, if given), the run stopping, or `timeout`
        seconds; the count to wait after next time."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self.stopped.is_set() and not self._changed_since(seen, uuids):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            return self._count

    def _changed_since(self, seen: int, uuids: set[str] | None) -> bool:
        if uuids is None or self._everything > seen:
            return self._count != seen
        return any(self._last.get(uuid, -1) > seen for uuid in uuids)

    def wake(self, uuid: str | None = None) -> None:
        """A change to `uuid` (None: to anything — every waiter looks)."""
        with self._changed:
            self._count += 1
            if uuid is None:
                self._everything = self._count
            else:
                self._last[uuid] = self._count
            self._changed.notify_all()

    def stop(self) -> None:
        self.stopped.set()
        self.wake()

    def follow(self, cluster: str) -> None:
        """Wake the waiters whenever `cluster` commits a change to a request or container."""
        with self._lock:
            if cluster in self._followed:
                return
            self._followed.add(cluster)
        try:
            client = self._client_for(cluster)
        except (ArchipelagoError, KeyError) as exc:
            log.info("cannot follow cluster %s's changes (%s); its steps are polled", cluster, exc)
            return

        def run() -> None:
            while not self.stopped.is_set():
                try:
                    for event in client.connection.events(["container_requests", "containers"]):
                        self.wake(str(event.get("uuid") or "") or None)
                        if self.stopped.is_set():
                            return
                except (ConnectionError, ArchipelagoError):
                    self.stopped.wait(1.0)

        threading.Thread(target=run, name=f"cwl-events-{cluster}", daemon=True).start()
