"""my schema"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_event_tables("my", outbox=True, inbox=True, deleted_users=True)
    op.create_table(
        "owned_characters",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("character_code", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "character_code", name=op.f("pk_owned_characters")),
        schema="my",
    )
    op.create_table(
        "point_ledger",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.Column("character_name", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_point_ledger")),
        sa.UniqueConstraint("user_id", "job_id", "reason", name="uq_point_ledger_user_job_reason"),
        schema="my",
    )
    op.create_index(
        "ix_point_ledger_user_created", "point_ledger", ["user_id", "created_at", "id"], unique=False, schema="my"
    )
    op.create_table(
        "profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("nickname", sa.String(length=30), nullable=False),
        sa.Column("nickname_customised", sa.Boolean(), nullable=False),
        sa.Column("account_synced", sa.Boolean(), nullable=False),
        sa.Column("phone_number", sa.String(length=13), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("profile_image_url", sa.String(length=2048), nullable=True),
        sa.Column("last_login_provider", sa.String(length=16), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_profiles")),
        schema="my",
    )
    op.create_index("uq_profiles_phone_number", "profiles", ["phone_number"], unique=True, schema="my")


def downgrade() -> None:
    drop_event_tables("my", outbox=True, inbox=True, deleted_users=True)
    op.drop_index("uq_profiles_phone_number", table_name="profiles", schema="my")
    op.drop_table("profiles", schema="my")
    op.drop_index("ix_point_ledger_user_created", table_name="point_ledger", schema="my")
    op.drop_table("point_ledger", schema="my")
    op.drop_table("owned_characters", schema="my")
