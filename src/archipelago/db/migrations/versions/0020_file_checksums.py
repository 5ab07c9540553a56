"""Files' checksums for DRS (md5, sha-256 on request), computed once per PDH and path.

A branch of its own from 0011 (migrations 0020-0029 are the GA4GH work's; `migrate` brings every
head up).

Revision ID: 0020
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0011"
branch_labels = ("ga4gh",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "file_checksums",
        sa.Column("pdh", sa.String(64), primary_key=True),
        sa.Column("algorithm", sa.String(16), primary_key=True),
        sa.Column("path", sa.Text(), primary_key=True),
        sa.Column("checksum", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("file_checksums")
