"""Compute: container requests (what users ask to run) and containers (what runs, shared by reuse);
links may have no tail.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # links without a tail: Arvados' tags and arv-keepdocker's image links
    with op.batch_alter_table("links") as batch:
        batch.alter_column("tail_uuid", existing_type=sa.String(27), nullable=True)
    op.create_table(
        "container_requests",
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("properties", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("requesting_container_uuid", sa.String(length=27), nullable=True),
        sa.Column("container_uuid", sa.String(length=27), nullable=True),
        sa.Column("container_count", sa.Integer(), nullable=False),
        sa.Column("container_count_max", sa.Integer(), nullable=False),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("container_image", sa.String(length=255), nullable=True),
        sa.Column("cwd", sa.String(length=1024), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("mounts", sa.JSON(), nullable=False),
        sa.Column("secret_mounts", sa.JSON(), nullable=False),
        sa.Column("output_path", sa.String(length=1024), nullable=True),
        sa.Column("output_glob", sa.JSON(), nullable=False),
        sa.Column("output_name", sa.String(length=255), nullable=True),
        sa.Column("output_ttl", sa.Integer(), nullable=False),
        sa.Column("output_properties", sa.JSON(), nullable=False),
        sa.Column("output_storage_classes", sa.JSON(), nullable=False),
        sa.Column("runtime_constraints", sa.JSON(), nullable=False),
        sa.Column("scheduling_parameters", sa.JSON(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("use_existing", sa.Boolean(), nullable=False),
        sa.Column("log_uuid", sa.String(length=27), nullable=True),
        sa.Column("output_uuid", sa.String(length=27), nullable=True),
        sa.Column("runtime_token", sa.String(length=255), nullable=True),
        sa.Column("runtime_user_uuid", sa.String(length=27), nullable=True),
        sa.Column("cumulative_cost", sa.Float(), nullable=False),
        sa.Column("uuid", sa.String(length=27), nullable=False),
        sa.Column("owner_uuid", sa.String(length=27), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by_user_uuid", sa.String(length=27), nullable=True),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index(
        op.f("ix_container_requests_container_uuid"), "container_requests", ["container_uuid"], unique=False
    )
    op.create_index(op.f("ix_container_requests_modified_at"), "container_requests", ["modified_at"], unique=False)
    op.create_index(op.f("ix_container_requests_owner_uuid"), "container_requests", ["owner_uuid"], unique=False)
    op.create_index(
        op.f("ix_container_requests_requesting_container_uuid"),
        "container_requests",
        ["requesting_container_uuid"],
        unique=False,
    )
    op.create_index(op.f("ix_container_requests_state"), "container_requests", ["state"], unique=False)
    op.create_table(
        "containers",
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("log", sa.String(length=64), nullable=True),
        sa.Column("output", sa.String(length=64), nullable=True),
        sa.Column("command", sa.JSON(), nullable=False),
        sa.Column("container_image", sa.String(length=255), nullable=True),
        sa.Column("cwd", sa.String(length=1024), nullable=False),
        sa.Column("environment", sa.JSON(), nullable=False),
        sa.Column("mounts", sa.JSON(), nullable=False),
        sa.Column("secret_mounts", sa.JSON(), nullable=False),
        sa.Column("output_path", sa.String(length=1024), nullable=True),
        sa.Column("output_glob", sa.JSON(), nullable=False),
        sa.Column("output_properties", sa.JSON(), nullable=False),
        sa.Column("output_storage_classes", sa.JSON(), nullable=False),
        sa.Column("runtime_constraints", sa.JSON(), nullable=False),
        sa.Column("runtime_status", sa.JSON(), nullable=False),
        sa.Column("scheduling_parameters", sa.JSON(), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("priority", sa.BigInteger(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("auth_uuid", sa.String(length=27), nullable=True),
        sa.Column("locked_by_uuid", sa.String(length=27), nullable=True),
        sa.Column("lock_count", sa.Integer(), nullable=False),
        sa.Column("runtime_user_uuid", sa.String(length=27), nullable=True),
        sa.Column("runtime_token", sa.String(length=255), nullable=True),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("reuse_key", sa.String(length=32), nullable=False),
        sa.Column("uuid", sa.String(length=27), nullable=False),
        sa.Column("owner_uuid", sa.String(length=27), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("modified_by_user_uuid", sa.String(length=27), nullable=True),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index(op.f("ix_containers_auth_uuid"), "containers", ["auth_uuid"], unique=False)
    op.create_index(op.f("ix_containers_modified_at"), "containers", ["modified_at"], unique=False)
    op.create_index(op.f("ix_containers_owner_uuid"), "containers", ["owner_uuid"], unique=False)
    op.create_index(op.f("ix_containers_priority"), "containers", ["priority"], unique=False)
    op.create_index(op.f("ix_containers_reuse_key"), "containers", ["reuse_key"], unique=False)
    op.create_index(op.f("ix_containers_state"), "containers", ["state"], unique=False)


def downgrade() -> None:
    op.drop_table("containers")
    op.drop_table("container_requests")
    with op.batch_alter_table("links") as batch:
        batch.alter_column("tail_uuid", existing_type=sa.String(27), nullable=False)
