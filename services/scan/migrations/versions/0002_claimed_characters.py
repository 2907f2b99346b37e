"""claimed characters: the reward is decided in scan's own finishing transaction

Backfill: every character a user was already rewarded with by a scan scan still holds (a completed
job with ``reward_character``), earliest job first, so ``received``/``already_owned`` stay right for
them. Ownership granted before that lives only in the character service's database, which this
service never reads (docs/scan.md, reward).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
    # SQLite has no schemas (the runner's schema translation does not reach these DML statements).
    # ON CONFLICT keeps the earliest job per (user, character), thanks to the ORDER BY.
    sqlite = op.get_bind().dialect.name == "sqlite"
    schema = None if sqlite else "scan"
    jobs = sa.table(
        "jobs",
        sa.column("id", sa.Uuid),
        sa.column("user_id", sa.Uuid),
        sa.column("status", sa.String),
        sa.column("reward_character", sa.String),
        sa.column("completed_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    claims = sa.table(
        "claimed_characters",
        sa.column("user_id", sa.Uuid),
        sa.column("character_code", sa.String),
        sa.column("job_id", sa.Uuid),
        sa.column("claimed_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    earlier = (
        sa.select(jobs.c.user_id, jobs.c.reward_character, jobs.c.id, jobs.c.completed_at)
        .where(jobs.c.status == "completed", jobs.c.reward_character.is_not(None), jobs.c.completed_at.is_not(None))
        .order_by(jobs.c.completed_at)
    )
    insert = sqlite_insert if sqlite else pg_insert
    op.execute(
        insert(claims)
        .from_select(["user_id", "character_code", "job_id", "claimed_at"], earlier)
        .on_conflict_do_nothing()
    )


def downgrade() -> None:
    op.drop_table("claimed_characters", schema="scan")
