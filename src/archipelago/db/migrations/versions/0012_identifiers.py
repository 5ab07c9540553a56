"""Dataset identifiers on collections and projects, and the change cursor resolvers follow; the
cursor starts with every PDH already held, so a first push tells a resolver all of it.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identifiers",
        sa.Column("uuid", sa.String(27), primary_key=True),
        sa.Column("owner_uuid", sa.String(27), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by_user_uuid", sa.String(27), nullable=True),
        sa.Column("head_uuid", sa.String(27), nullable=False),
        sa.Column("identifier", sa.String(2048), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("head_uuid", "identifier", name="uq_identifiers_head_identifier"),
    )
    for column in ("owner_uuid", "modified_at", "head_uuid", "identifier"):
        op.create_index(f"ix_identifiers_{column}", "identifiers", [column])
    op.create_table(
        "registry_changes",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(2100), nullable=False),
        sqlite_autoincrement=True,
    )
    op.execute("INSERT INTO registry_changes (key) SELECT DISTINCT 'pdh:' || portable_data_hash FROM collections "
               "WHERE is_trashed = false")


def downgrade() -> None:
    op.drop_table("registry_changes")
    op.drop_table("identifiers")
