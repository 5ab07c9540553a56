"""Released copies: block copies a move left behind, released after a signing TTL.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "released_copies",
        sa.Column("locator", sa.String(64), primary_key=True),
        sa.Column("place", sa.String(40), primary_key=True),
        sa.Column("since", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("released_copies")
