"""auth inbox: events applied by the auth service (user.deleted)

Revision ID: 0002
Revises: 0001
"""

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_event_tables("auth", inbox=True)


def downgrade() -> None:
    drop_event_tables("auth", inbox=True)
