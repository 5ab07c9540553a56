"""Which collections read each block (md5 -> collection), so that finding them is an index lookup
(a gateway naming the collections a changed object affects; releasing a moved copy). Filled here
from the manifests already stored; kept up to date by db/block_index.py.

A branch of its own from 0012 (migrations 0040-0049 are the keep client's; `migrate` brings every
head up).

Revision ID: 0040
Revises: 0012
"""

import re

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0012"
branch_labels = ("keep_blocks",)
depends_on = None

LOCATOR_MD5 = re.compile(r"(?:^|(?<=[ \n]))([0-9a-f]{32})\+[0-9]")


def upgrade() -> None:
    table = op.create_table(
        "collection_blocks",
        sa.Column("md5", sa.String(32), primary_key=True),
        sa.Column("collection_uuid", sa.String(27), primary_key=True),
    )
    op.create_index("ix_collection_blocks_collection_uuid", "collection_blocks", ["collection_uuid"])
    collections = op.get_bind().execute(sa.text("SELECT uuid, manifest_text FROM collections"))
    rows = [{"md5": md5, "collection_uuid": uuid} for uuid, text in collections
            for md5 in sorted(set(LOCATOR_MD5.findall(text or "")))]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_index("ix_collection_blocks_collection_uuid", "collection_blocks")
    op.drop_table("collection_blocks")
