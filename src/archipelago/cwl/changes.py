"""Waking the steps that wait for their containers: each cluster a step runs on is followed on its
own change stream (with the user's token salted for it), and every change wakes every waiter. The
changes are counted, so a change that arrives while a step is looking at its request (between its
GET and its sleep) is not slept through. Where a stream cannot be had, waiting falls back to polling.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from ..errors import ArchipelagoError
from ..sdk.client import ApiClient

log = logging.getLogger("archipelago.cwl")


class Changes:
    def __init__(self, client_for: Callable[[str], ApiClient]):
        self._client_for = client_for
        self._changed = threading.Condition()
        self._count = 0
        self._followed: set[str] = set()
        self._lock = threading.Lock()
        self.stopped = threading.Event()

    def seen(self) -> int:
        """The changes heard of so far (to wait for one after this)."""
        with self._changed:
            return self._count

    def wait(self, seen: int, timeout: float) -> None:
        """Until a change after `seen`, the run stopping, or `timeout` seconds."""
        with self._changed:
            if self._count == seen and not self.stopped.is_set():
                self._changed.wait(timeout)

    def wake(self) -> None:
        with self._changed:
            self._count += 1
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
                    for _ in client.connection.events(["container_requests", "containers"]):
                        self.wake()
                        if self.stopped.is_set():
                            return
                except (ConnectionError, ArchipelagoError):
                    self.stopped.wait(1.0)

        threading.Thread(target=run, name=f"cwl-events-{cluster}", daemon=True).start()
