"""Indexes for prefix LIKE filters on names (PostgreSQL needs the pattern operator class).

Also drops the index on collections.is_trashed: nearly every row has the same value, and SQLite,
without statistics, picked it and scanned the whole table for every list.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_collections_name_pattern ON collections (name varchar_pattern_ops)")
        op.execute("CREATE INDEX ix_groups_name_pattern ON groups (name varchar_pattern_ops)")
    op.create_index("ix_collections_owner_modified", "collections", ["owner_uuid", "modified_at"])
    op.drop_index("ix_collections_is_trashed", "collections")


def downgrade() -> None:
    op.create_index("ix_collections_is_trashed", "collections", ["is_trashed"])
    op.drop_index("ix_collections_owner_modified", "collections")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_collections_name_pattern")
        op.execute("DROP INDEX ix_groups_name_pattern")
