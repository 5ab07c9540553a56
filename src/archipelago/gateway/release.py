"""Releasing the copies a move left behind. When a collection's data moves (`archi keep move`:
same PDH, other hints), the copies it stopped reading are nominated (resources/collections.py).
A nominated copy is released once it has gone unread for a whole blob signing TTL — every
locator signed for it has expired by then, so no reader in the middle of a read still needs
it — and only if no collection on the cluster (trashed ones too) reads that copy again:
- in Keep: trashed on each keepstore through keep-balance's own endpoints (`/index`, `/trash`),
  which refuse a block rewritten since; it is deleted after the trash lifetime;
- on a gateway: its block map row is dropped, so the gateway no longer serves it; an object the
  gateway itself wrote (`archipelago-blocks/<md5>`) is deleted, data registered in place never is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..config import ClusterConfig
from ..db.block_index import collections_reading
from ..db.models import GatewayBlock, ReleasedCopy
from ..formats.manifest import block_copies
from ..keep.client import KeepClient
from ..keep.errors import KeepServiceError, NoAnswer
from .stores import MOVED_PREFIX, ObjectStore, store_for

log = logging.getLogger("archipelago.release")
Sessions = Callable[[], AbstractContextManager[Session]]


class Releaser:
    def __init__(self, config: ClusterConfig, sessions: Sessions):
        self.config, self.sessions = config, sessions
        self.gateways = {str(gateway.uuid): gateway for gateway in config.gateways}
        self._stores: dict[str, ObjectStore] = {}  # made when first needed (an S3 client is not free)
        # keep-balance's endpoints on each keepstore, as the system root (our own loopback certificates)
        self._keep = KeepClient.from_urls(config.keep_service_urls, config.system_root_token, cache=None,
                                          retries=2, insecure=True)

    def release_due(self, now: float | None = None) -> list[tuple[str, str]]:
        """Release what has been nominated for a whole TTL and is read by no collection; returns
        the (locator, place) pairs released. Nominations are settled either way."""
        due_before = (time.time() if now is None else now) - self.config.collections.blob_signing_ttl
        with self.sessions() as session:
            due = [(c.locator, c.place) for c in
                   session.scalars(select(ReleasedCopy).where(ReleasedCopy.since <= due_before))]
        released = []
        for locator, place in due:
            try:
                if not self._still_read(locator, place) and self._release(locator, place):
                    released.append((locator, place))
            except Exception:  # a keepstore or a store unreachable now: this one waits for the next round
                log.exception("releasing %s from %s failed; will try again", locator, place)
                continue
            with self.sessions() as session:
                session.execute(delete(ReleasedCopy).where(ReleasedCopy.locator == locator,
                                                           ReleasedCopy.place == place))
        return released

    def _still_read(self, locator: str, place: str) -> bool:
        """Whether a collection (trashed ones too) reads this copy: those reading the block are found
        by the block index, and only their manifests are read."""
        with self.sessions() as session:
            readers = collections_reading(session, locator)
        return any((locator, place) in block_copies(text) for _, text in readers)

    def _release(self, locator: str, place: str) -> bool:
        if place == "keep":
            return self._trash_in_keep(locator)
        if place in self.gateways:
            return self._drop_from_gateway(locator, place)
        return False  # another cluster's copy, or a gateway no longer configured: not ours to release

    def _trash_in_keep(self, locator: str) -> bool:
        trashed = 0
        for service in self._keep.services:
            try:
                copies = [entry for entry in self._keep.index(service, locator.split("+")[0])
                          if entry.locator == locator]
                if copies:
                    trashed += self._keep.trash(service, copies)
            except KeepServiceError as exc:
                if isinstance(exc.failure, NoAnswer):  # not now: the nomination waits for the next round
                    raise
                log.warning("release: %s", exc)
        log.info("released %s from Keep (%d copies trashed)", locator, trashed)
        return trashed > 0

    def _drop_from_gateway(self, locator: str, gateway_uuid: str) -> bool:
        with self.sessions() as session:
            rows = session.scalars(select(GatewayBlock).where(GatewayBlock.gateway_uuid == gateway_uuid,
                                                              GatewayBlock.locator == locator)).all()
            objects = [row.object for row in rows]
            session.execute(delete(GatewayBlock).where(GatewayBlock.gateway_uuid == gateway_uuid,
                                                       GatewayBlock.locator == locator))
        store = self._stores.get(gateway_uuid) or self._stores.setdefault(
            gateway_uuid, store_for(self.gateways[gateway_uuid]))
        for name in objects:
            if name.startswith(MOVED_PREFIX):
                store.delete(name)
        log.info("released %s from gateway %s", locator, gateway_uuid)
        return bool(objects)


async def release_forever(releaser: Releaser, interval: float) -> None:
    """The cluster's background loop (run/cluster.py)."""
    while True:
        try:
            await asyncio.to_thread(releaser.release_due)
        except Exception:  # the database unreachable now: the nominations wait for the next round
            log.exception("releasing moved copies failed; will try again")
        await asyncio.sleep(interval)
