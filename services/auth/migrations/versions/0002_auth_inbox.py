"""auth inbox: events applied by the auth service (user.deleted)"""

from services.common.migrations import create_event_tables, drop_event_tables

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    create_event_tables("auth", inbox=True)


def downgrade() -> None:
    drop_event_tables("auth", inbox=True)
