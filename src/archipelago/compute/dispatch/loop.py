"""The dispatch loop every compute backend shares (Arvados' dispatch library, reference §3.4):
look for containers locked by this dispatcher and for queued ones with priority > 0 (highest
first), lock what fits and start it, stop what nobody wants any more (priority 0), and cancel a
container whose executor died without finishing it (the lifecycle then retries it)."""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from ...errors import ArchipelagoError
from ...sdk.client import ApiClient
from .base import ComputeBackend

log = logging.getLogger("archipelago.dispatch")
FINAL = ("Complete", "Cancelled")


class DispatchLoop:
    def __init__(self, api: ApiClient, backend: ComputeBackend, poll_seconds: float = 0.5):
        self.api, self.backend, self.poll_seconds = api, backend, poll_seconds
        self.me = str(api.request("GET", "api_client_authorizations/current")["uuid"])
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._stopped_by_us: set[str] = set()
        self._adopted = False

    def run_forever(self) -> None:
        threading.Thread(target=self._follow_changes, name="dispatch-events", daemon=True).start()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.tick()
            except ArchipelagoError as exc:
                log.warning("dispatch: %s", exc)
            except Exception:  # the dispatcher must outlive any one bad answer
                log.exception("dispatch: unexpected error")
            self._wake.wait(self.poll_seconds)  # a change to a container wakes it at once

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    def _follow_changes(self) -> None:
        """Wake the loop whenever a container changes (queued, finished); polling stays the safety net."""
        while not self._stopping.is_set():
            try:
                for _ in self.api.connection.events(["containers"]):
                    self._wake.set()
                    if self._stopping.is_set():
                        return
            except (ConnectionError, ArchipelagoError) as exc:
                log.info("dispatch: change stream ended (%s); reconnecting", exc)
            self._stopping.wait(1.0)

    def _list(self, filters: list[list[Any]]) -> list[dict[str, Any]]:
        return list(self.api.containers.list(filters, order=["priority desc"], limit=1000)["items"])

    def tick(self) -> None:
        mine = self._list([["locked_by_uuid", "=", self.me], ["state", "in", ["Locked", "Running"]]])
        for container in mine:
            try:
                self._watch(container)
            except Exception:  # one container's trouble is logged; the others are still watched
                log.exception("dispatch: watching %s failed", container["uuid"])
        for uuid in self.backend.tracked() - {c["uuid"] for c in mine}:
            self.backend.forget(uuid)  # finished (its executor reported it): its cores and RAM are free
        self._adopted = True
        for container in self._list([["state", "=", "Queued"], ["priority", ">", 0]]):
            try:
                fits = self.backend.fits(container)
            except Exception as exc:  # a container no backend can size must not hold up everyone behind it
                self._refuse(container, f"the dispatcher cannot judge what it needs: {exc}")
                continue
            if not fits:
                break  # highest priority first: nothing lower jumps the queue
            try:
                self.api.request("POST", f"containers/{container['uuid']}/lock")
            except ArchipelagoError as exc:  # another dispatcher took it, or it was cancelled
                log.info("dispatch: could not lock %s: %s", container["uuid"], exc)
                continue
            self._start(container)

    def _start(self, container: dict[str, Any]) -> None:
        try:
            self.backend.start(container)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.backend.forget(container["uuid"])  # whatever it had reserved is free again
            self._refuse(container, f"the dispatcher could not start it: {exc}")
            return
        log.info("dispatch: started %s", container["uuid"])

    def _refuse(self, container: dict[str, Any], reason: str) -> None:
        """Cancel a container the dispatcher cannot run, saying why (runtime_status.error). The
        lifecycle retries it while its requests have tries left (a passing failure heals, a
        permanent one ends in a few passes), then its requests are Final."""
        uuid = container["uuid"]
        reason = reason if len(reason) <= 500 else reason[:497] + "..."
        log.warning("dispatch: cancelling %s: %s", uuid, reason)
        status = {**(container.get("runtime_status") or {}), "error": reason}
        try:
            self.api.request("PUT", f"containers/{uuid}",
                             body={"container": {"state": "Cancelled", "runtime_status": status}})
        except ArchipelagoError as exc:  # cancelled meanwhile, say; the next pass sees it again if not
            log.warning("dispatch: could not cancel %s: %s", uuid, exc)

    def _watch(self, container: dict[str, Any]) -> None:
        uuid = container["uuid"]
        if not self._adopted and self.backend.alive(uuid):
            self.backend.adopt(container)  # running since before a restart
        if self.backend.alive(uuid):
            if container["priority"] == 0 and uuid not in self._stopped_by_us:
                log.info("dispatch: %s has priority 0: stopping it", uuid)
                self.backend.stop(uuid)
                self._stopped_by_us.add(uuid)
            return
        current = self.api.request("GET", f"containers/{uuid}")
        if current["state"] == "Locked" and not self._adopted:
            self.api.request("POST", f"containers/{uuid}/unlock")  # locked before a restart, never started
        elif current["state"] not in FINAL:
            log.warning("dispatch: the executor of %s exited without finishing it: cancelling", uuid)
            self.backend.sweep(uuid)
            self.api.request("PUT", f"containers/{uuid}", body={"container": {"state": "Cancelled"}})
        self.backend.forget(uuid)
        self._stopped_by_us.discard(uuid)
