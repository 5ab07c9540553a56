"""Gateway blocks get a fast checksum (xxh3-128) beside their md5, taken when registered, so
reads are checked without a second md5 pass (md5 decides when the two disagree).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_blocks") as table:
        table.add_column(sa.Column("checksum", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("gateway_blocks") as table:
        table.drop_column("checksum")
