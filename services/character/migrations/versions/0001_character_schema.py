"""character schema"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_event_tables("character", outbox=True, inbox=True, deleted_users=True)
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
    drop_event_tables("character", outbox=True, inbox=True, deleted_users=True)
    op.drop_index(op.f("ix_character_reward_decisions_user_id"), table_name="reward_decisions", schema="character")
    op.drop_table("reward_decisions", schema="character")
    op.drop_table("ownerships", schema="character")
    op.drop_table("catalog", schema="character")
