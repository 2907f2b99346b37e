"""claimed characters: the reward is decided in scan's own finishing transaction

Backfill: every character a user was already rewarded with by a scan scan still holds (a completed
job with ``reward_character``), earliest job first, so ``received``/``already_owned`` stay right for
them. Ownership granted before that lives only in the character service's database, which this
service never reads (docs/scan.md, reward).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "claimed_characters",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("character_code", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "character_code", name=op.f("pk_claimed_characters")),
        schema="scan",
    )
    # SQLite has no schemas (the runner's translation does not reach raw SQL); ON CONFLICT keeps the
    # earliest job per (user, character) thanks to the ORDER BY.
    prefix = "" if op.get_bind().dialect.name == "sqlite" else "scan."
    op.execute(
        f"INSERT INTO {prefix}claimed_characters (user_id, character_code, job_id, claimed_at) "
        f"SELECT user_id, reward_character, id, completed_at FROM {prefix}jobs "
        "WHERE status = 'completed' AND reward_character IS NOT NULL AND completed_at IS NOT NULL "
        "ORDER BY completed_at ON CONFLICT DO NOTHING"
    )


def downgrade() -> None:
    op.drop_table("claimed_characters", schema="scan")
