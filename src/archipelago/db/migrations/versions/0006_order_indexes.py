"""Project listings: indexes that end in uuid, the tie-breaker of every order, so that one index
scan serves `ORDER BY name, uuid` or `ORDER BY modified_at DESC, uuid DESC` and LIMIT stops it early
(with equal keys the database otherwise sorted every matching row).

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_collections_owner_modified_uuid", "collections", ["owner_uuid", "modified_at", "uuid"])
    op.create_index("ix_collections_owner_trashed_name_uuid", "collections",
                    ["owner_uuid", "is_trashed", "name", "uuid"])
    op.drop_index("ix_collections_owner_modified", "collections")
    op.drop_index("ix_collections_owner_trashed_name", "collections")


def downgrade() -> None:
    op.create_index("ix_collections_owner_trashed_name", "collections", ["owner_uuid", "is_trashed", "name"])
    op.create_index("ix_collections_owner_modified", "collections", ["owner_uuid", "modified_at"])
    op.drop_index("ix_collections_owner_trashed_name_uuid", "collections")
    op.drop_index("ix_collections_owner_modified_uuid", "collections")
