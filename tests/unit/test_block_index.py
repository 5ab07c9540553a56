"""Which collections read a block is an index lookup (db/block_index.py), kept in step with every
manifest written: created, changed, trashed (still read), deleted (no longer). The gateway's refusal
and the release of moved copies ask it, not a scan of every manifest."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from archipelago.db.block_index import blocks_of, collections_reading
from archipelago.db.models import Collection, CollectionBlock
from archipelago.db.session import make_engine, migrate
from tests.support.backends import single_cluster


def block(text: bytes) -> str:
    return f"{hashlib.md5(text).hexdigest()}+{len(text)}"


A, B, C = block(b"a"), block(b"b"), block(b"c")


def test_only_locators_count_as_blocks_not_names_that_look_like_them():
    name = hashlib.md5(b"a name").hexdigest() + "+3"
    manifest = f". {A} {B}+K@z1111-bi6l4-gateway00000009 0:1:{name} 1:1:b\n./sub {A} 0:1:x\n"
    assert blocks_of(manifest) == {A[:32], B[:32]}
    assert blocks_of("") == set() and blocks_of(None) == set()


@pytest.fixture
def site(tmp_path: Path):
    return single_cluster(tmp_path)


def readers(site, locator: str) -> list[str]:
    with site.local.db.session() as session:
        return [uuid for uuid, _ in collections_reading(session, locator)]


def test_the_index_follows_every_manifest_written(site):
    first = site.local.create(site.admin, "collections", {"manifest_text": f". {A} {B} 0:2:ab\n"})
    second = site.local.create(site.admin, "collections", {"manifest_text": f". {A} 0:1:a\n"})
    assert sorted(readers(site, A)) == sorted([first["uuid"], second["uuid"]])
    assert readers(site, B) == [first["uuid"]]

    site.local.update(site.admin, "collections", first["uuid"], {"manifest_text": f". {C} 0:1:c\n"})
    assert readers(site, A) == [second["uuid"]] and readers(site, B) == [] and readers(site, C) == [first["uuid"]]

    site.local.update(site.admin, "collections", second["uuid"], {"name": "renamed"})  # no manifest: rows kept
    assert readers(site, A) == [second["uuid"]]

    site.local.trash(site.admin, "collections", second["uuid"])
    assert readers(site, A) == [second["uuid"]]  # a trashed collection still reads its blocks

    with site.local.db.session() as session:  # purged at last (its delete_at passed): the row goes
        session.delete(session.get(Collection, second["uuid"]))
    assert readers(site, A) == []
    with site.local.db.session() as session:
        assert session.scalars(select(CollectionBlock).where(CollectionBlock.collection_uuid == second["uuid"])).all() \
            == []


def test_a_lookup_reads_the_index_not_every_manifest(site):
    """The query plan names the index: no scan of collections."""
    site.local.create(site.admin, "collections", {"manifest_text": f". {A} 0:1:a\n"})
    with site.local.db.session() as session:
        plan = " ".join(str(row) for row in session.execute(text(
            "EXPLAIN QUERY PLAN SELECT collections.uuid FROM collections JOIN collection_blocks "
            "ON collection_blocks.collection_uuid = collections.uuid WHERE collection_blocks.md5 = :md5"),
            {"md5": A[:32]}))
    assert "SCAN collections" not in plan and "collection_blocks" in plan


def test_the_migration_indexes_the_manifests_already_stored(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(engine, "0012")  # before the index existed
    uuid, stamp = "z1111-4zz18-000000000000001", datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(insert(Collection.__table__).values(
            uuid=uuid, owner_uuid="z1111-tpzed-000000000000000", manifest_text=f". {A} {B} 0:2:ab\n",
            portable_data_hash="d41d8cd98f00b204e9800998ecf8427e+0", created_at=stamp, modified_at=stamp))
    migrate(engine)
    with engine.connect() as connection:
        rows = connection.execute(select(CollectionBlock.md5).where(CollectionBlock.collection_uuid == uuid))
        assert sorted(md5 for (md5,) in rows) == sorted([A[:32], B[:32]])


def test_collections_are_written_through_the_orm_only():
    """The index follows ORM flushes: a Core insert or update of collections would bypass it."""
    root = Path(__file__).resolve().parents[2] / "src" / "archipelago"
    bypassing = [str(path.relative_to(root)) for path in root.rglob("*.py")
                 if any(f in path.read_text() for f in ("insert(Collection)", "update(Collection)",
                                                         "Collection.__table__"))]
    assert bypassing == []
