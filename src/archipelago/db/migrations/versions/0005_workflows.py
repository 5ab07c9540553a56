"""Workflows: stored CWL documents, so they can be run, shared and copied between clusters.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workflows",
        sa.Column("uuid", sa.String(27), primary_key=True),
        sa.Column("owner_uuid", sa.String(27), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by_user_uuid", sa.String(27), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("definition", sa.Text(), nullable=True),
    )
    op.create_index("ix_workflows_owner_uuid", "workflows", ["owner_uuid"])
    op.create_index("ix_workflows_modified_at", "workflows", ["modified_at"])
    op.create_index("ix_workflows_name", "workflows", ["name"])


def downgrade() -> None:
    op.drop_table("workflows")
