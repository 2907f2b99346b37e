"""scan schema"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_event_tables("scan", outbox=True, inbox=True)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("image_url", sa.String(length=2048), nullable=False),
        sa.Column("image_key", sa.String(length=128), nullable=False),
        sa.Column("image_type", sa.String(length=64), nullable=False),
        sa.Column("user_input", sa.String(length=500), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("reward_character", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        schema="scan",
    )
    op.create_index("ix_jobs_user", "jobs", ["user_id", "created_at"], unique=False, schema="scan")
    op.create_index("ix_jobs_open", "jobs", ["status", "deadline_at"], unique=False, schema="scan")
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
        schema="scan",
    )


def downgrade() -> None:
    drop_event_tables("scan", outbox=True, inbox=True)
    op.drop_table("idempotency_keys", schema="scan")
    op.drop_index("ix_jobs_open", table_name="jobs", schema="scan")
    op.drop_index("ix_jobs_user", table_name="jobs", schema="scan")
    op.drop_table("jobs", schema="scan")
