"""image schema"""

import sqlalchemy as sa
from alembic import op

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_event_tables("image", inbox=True)
    op.create_table(
        "uploads",
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rejection_code", sa.String(length=32), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_uploads")),
        schema="image",
    )
    op.create_index("ix_uploads_user", "uploads", ["user_id"], unique=False, schema="image")
    op.create_index("ix_uploads_status_created", "uploads", ["status", "created_at"], unique=False, schema="image")


def downgrade() -> None:
    drop_event_tables("image", inbox=True)
    op.drop_index("ix_uploads_status_created", table_name="uploads", schema="image")
    op.drop_index("ix_uploads_user", table_name="uploads", schema="image")
    op.drop_table("uploads", schema="image")
