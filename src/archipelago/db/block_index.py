"""Which collections read a block: the `collection_blocks` rows (db/models.py:CollectionBlock) kept
in step with every manifest written, in the writer's own flush, whoever writes it (the resource
engine, the container lifecycle saving outputs), and the lookups that use them. Collections are
therefore written through the ORM only (tests/unit/test_block_index.py checks no module bypasses it)."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, event, insert, select
from sqlalchemy.orm import Session, attributes

from .models import Collection, CollectionBlock

# a block locator is a token of its own (tokens are separated by spaces and newlines): 32 hex + "+size"
LOCATOR_MD5 = re.compile(r"(?:^|(?<=[ \n]))([0-9a-f]{32})\+[0-9]")


def blocks_of(manifest_text: str | None) -> set[str]:
    """The md5 of every block a manifest reads."""
    return set(LOCATOR_MD5.findall(manifest_text or ""))


def rows_for(uuid: str, manifest_text: str | None) -> list[dict[str, str]]:
    return [{"md5": md5, "collection_uuid": uuid} for md5 in sorted(blocks_of(manifest_text))]


@event.listens_for(Session, "after_flush")
def follow_manifests(session: Session, _context: Any) -> None:
    """Replace the rows of each collection whose manifest this flush wrote (in the same transaction:
    they commit, or roll back, with it)."""
    written = [row for row in session.new if isinstance(row, Collection)]
    written += [row for row in session.dirty if isinstance(row, Collection)
                and attributes.get_history(row, "manifest_text").has_changes()]
    gone = [row.uuid for row in session.deleted if isinstance(row, Collection)]
    if not written and not gone:
        return
    connection = session.connection()
    uuids = [row.uuid for row in written] + gone
    connection.execute(delete(CollectionBlock).where(CollectionBlock.collection_uuid.in_(uuids)))
    rows = [r for row in written for r in rows_for(row.uuid, row.manifest_text)]
    if rows:
        connection.execute(insert(CollectionBlock), rows)


def collections_reading(session: Session, md5: str, limit: int | None = None) -> list[tuple[str, str]]:
    """(uuid, manifest_text) of the collections — trashed ones too — whose manifest reads the block."""
    query = (select(Collection.uuid, Collection.manifest_text)
             .join(CollectionBlock, CollectionBlock.collection_uuid == Collection.uuid)
             .where(CollectionBlock.md5 == md5[:32]).order_by(Collection.uuid).limit(limit))
    return [(uuid, text) for uuid, text in session.execute(query)]
