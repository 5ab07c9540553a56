"""A token made through the API records the token that made it, so it dies with it (a container's
token when the container ends, a visitor's token when its home revokes it).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_client_authorizations") as table:
        table.add_column(sa.Column("parent_uuid", sa.String(27), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_client_authorizations") as table:
        table.drop_column("parent_uuid")
