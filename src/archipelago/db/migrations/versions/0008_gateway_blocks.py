"""Gateway blocks: where a gateway reads each block of data it serves in place.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gateway_blocks",
        sa.Column("gateway_uuid", sa.String(27), primary_key=True),
        sa.Column("locator", sa.String(64), primary_key=True),
        sa.Column("object", sa.Text(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.String(255), nullable=False),
        sa.Column("stale", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("gateway_blocks")
