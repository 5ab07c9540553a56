"""A gateway's block map (the `gateway_blocks` rows: which range of which object holds a block) and
the one question it asks of the cluster's collections — which of them read a block — answered from
their block index (db/block_index.py), never by scanning manifests. The gateway's HTTP handlers
(service.py) ask this; they hold no queries of their own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..db.block_index import collections_reading
from ..db.models import GatewayBlock
from ..errors import NotFound
from .stores import StoredObject

Sessions = Callable[[], AbstractContextManager[Session]]
AFFECTED_SHOWN = 20  # collections named in a refusal


class BlockMap:
    def __init__(self, sessions: Sessions, gateway_uuid: str):
        self.sessions, self.uuid = sessions, gateway_uuid

    def row(self, locator: str) -> GatewayBlock:
        """Where the block is (`md5+size`, or `md5` alone for a HEAD without size); 404 if not here."""
        with self.sessions() as session:
            query = select(GatewayBlock).where(GatewayBlock.gateway_uuid == self.uuid)
            query = query.where(GatewayBlock.locator == locator) if "+" in locator else \
                query.where(GatewayBlock.locator.like(f"{locator}+%"))
            row = session.scalars(query.limit(1)).first()
            if row is None:
                raise NotFound(f"block {locator} is not served by gateway {self.uuid}")
            session.expunge(row)
            return row

    def mark_stale(self, row: GatewayBlock) -> list[str]:
        """Every block of the row's object is stale (never served again until registered anew);
        the collections that read this block, as many as a message shows."""
        with self.sessions() as session:
            session.execute(update(GatewayBlock).where(GatewayBlock.gateway_uuid == self.uuid,
                                                       GatewayBlock.object == row.object).values(stale=True))
            return [uuid for uuid, _ in collections_reading(session, row.locator, AFFECTED_SHOWN)]

    def known(self, stored: StoredObject) -> list[dict[str, Any]] | None:
        """The blocks of an object mapped before at the same version, all of it (a resumed registration)."""
        with self.sessions() as session:
            query = select(GatewayBlock).where(
                GatewayBlock.gateway_uuid == self.uuid, GatewayBlock.object == stored.name,
                GatewayBlock.version == stored.version, GatewayBlock.stale.is_(False))
            blocks = [as_block(row) for row in session.scalars(query.order_by(GatewayBlock.offset))]
        covered = 0
        for block in blocks:
            if block["offset"] != covered:
                return None
            covered += block["length"]
        return blocks if blocks and covered == stored.size else None

    def record(self, blocks: list[dict[str, Any]]) -> None:
        with self.sessions() as session:
            for block in blocks:
                session.merge(GatewayBlock(**block, stale=False))


def as_block(row: GatewayBlock) -> dict[str, Any]:
    """A row of the block map as the dict `record` takes."""
    return {key: getattr(row, key) for key in
            ("gateway_uuid", "locator", "object", "offset", "length", "version", "checksum")}
