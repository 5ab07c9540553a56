"""Data residency: a policy on collections and projects ("cluster": contents stay on this cluster).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("collections") as batch:
        batch.add_column(sa.Column("residency", sa.String(32), nullable=True))
        batch.create_index("ix_collections_residency", ["residency"])
    with op.batch_alter_table("groups") as batch:
        batch.add_column(sa.Column("residency", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("groups") as batch:
        batch.drop_column("residency")
    with op.batch_alter_table("collections") as batch:
        batch.drop_index("ix_collections_residency")
        batch.drop_column("residency")
