"""Index table for properties filters (backfilled), and an owner/trash/name index for project listings.

Revision ID: 0003
Revises: 0002
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "property_index",
        sa.Column("object_uuid", sa.String(27), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_index("ix_property_index_key_value", "property_index", ["key", "value"])
    # counts of a project's live collections come from the index alone
    op.create_index("ix_collections_owner_trashed_name", "collections", ["owner_uuid", "is_trashed", "name"])
    bind = op.get_bind()
    for source in ("collections", "groups"):
        rows = []
        for uuid, properties in bind.execute(sa.text(f"SELECT uuid, properties FROM {source}")):
            values = json.loads(properties) if isinstance(properties, str) else (properties or {})
            rows += [{"object_uuid": uuid, "key": k, "value": v if isinstance(v, str) else json.dumps(v)}
                     for k, v in values.items()]
        if rows:
            op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_index("ix_collections_owner_trashed_name", "collections")
    op.drop_index("ix_property_index_key_value", "property_index")
    op.drop_table("property_index")
