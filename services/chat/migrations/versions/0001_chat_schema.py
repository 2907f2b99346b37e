"""chat schema: chats (keyset by activity), messages, jobs, inbox

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables("chat", inbox=True)
    op.create_table(
        "chats",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=100), nullable=True),
        sa.Column("preview", sa.String(length=100), nullable=True),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
        schema="chat",
    )
    op.create_index("ix_chats_user_activity", "chats", ["user_id", "activity_at", "id"], unique=False, schema="chat")
    op.create_table(
        "messages",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("intent", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        schema="chat",
    )
    op.create_index("ix_messages_chat", "messages", ["chat_id", "created_at", "id"], unique=False, schema="chat")
    op.create_index("ix_messages_user", "messages", ["user_id"], unique=False, schema="chat")
    op.create_table(
        "jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chat_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("user_message_id", sa.Uuid(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("input_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("input_reply", sa.JSON(), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.Column("assistant_message_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
        schema="chat",
    )
    op.create_index("ix_jobs_chat", "jobs", ["chat_id", "created_at"], unique=False, schema="chat")
    op.create_index("ix_jobs_open", "jobs", ["status", "deadline_at"], unique=False, schema="chat")
    op.create_index("ix_jobs_user", "jobs", ["user_id"], unique=False, schema="chat")


def downgrade() -> None:
    for name in ("ix_jobs_user", "ix_jobs_open", "ix_jobs_chat"):
        op.drop_index(name, table_name="jobs", schema="chat")
    op.drop_table("jobs", schema="chat")
    op.drop_index("ix_messages_user", table_name="messages", schema="chat")
    op.drop_index("ix_messages_chat", table_name="messages", schema="chat")
    op.drop_table("messages", schema="chat")
    op.drop_index("ix_chats_user_activity", table_name="chats", schema="chat")
    op.drop_table("chats", schema="chat")
    drop_event_tables("chat", inbox=True)
