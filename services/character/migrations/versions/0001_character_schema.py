"""character schema

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("match", sa.String(length=40), nullable=True),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("dialog", sa.String(length=500), nullable=False),
        sa.Column("cdn_code", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_catalog")),
        sa.UniqueConstraint("id", name=op.f("uq_catalog_id")),
        sa.UniqueConstraint("match", name=op.f("uq_catalog_match")),
        sa.UniqueConstraint("name", name=op.f("uq_catalog_name")),
        schema="character",
    )
    op.create_table(
        "deleted_users",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deleted_users")),
        schema="character",
    )
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
        schema="character",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        schema="character",
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["published_at", "occurred_at"], unique=False, schema="character"
    )
    op.create_table(
        "ownerships",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("character_code", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "character_code", name=op.f("pk_ownerships")),
        schema="character",
    )
    op.create_table(
        "reward_decisions",
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("eligible", sa.Boolean(), nullable=False),
        sa.Column("reward", sa.JSON(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_reward_decisions")),
        schema="character",
    )
    op.create_index(
        op.f("ix_character_reward_decisions_user_id"), "reward_decisions", ["user_id"], unique=False, schema="character"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_character_reward_decisions_user_id"), table_name="reward_decisions", schema="character")
    op.drop_table("reward_decisions", schema="character")
    op.drop_table("ownerships", schema="character")
    op.drop_index("ix_outbox_unpublished", table_name="outbox", schema="character")
    op.drop_table("outbox", schema="character")
    op.drop_table("inbox", schema="character")
    op.drop_table("deleted_users", schema="character")
    op.drop_table("catalog", schema="character")
