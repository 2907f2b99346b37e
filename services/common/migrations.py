"""Alembic, once per service: each service has its own history and version table in its schema.

A service's ``migrations/env.py`` is two lines that hand its metadata to ``run_env``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

SERVICES_DIR = Path(__file__).resolve().parent.parent
# A migration waits at most this long for a table lock, then fails (and the migration Job retries):
# a DDL statement queued behind a long query would otherwise block every later query on the table.
LOCK_TIMEOUT = "5s"


def alembic_config(service: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SERVICES_DIR / service / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["url"] = url
    return config


def upgrade(service: str, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(service, url), revision)


async def upgrade_async(service: str, url: str, revision: str = "head") -> None:
    # Alembic's env runs its own event loop; keep it off the caller's loop.
    await asyncio.to_thread(upgrade, service, url, revision)


def offline_sql(service: str, revisions: str, dialect_url: str = "postgresql+asyncpg://offline/eco2") -> str:
    """The SQL ``alembic upgrade <revisions> --sql`` would run (e.g. ``"0001:0002"``), without a database:
    what a reviewer reads and what the migration linter checks (docs/migrations.md)."""
    import io

    buffer = io.StringIO()
    config = alembic_config(service, dialect_url)
    config.output_buffer = buffer
    command.upgrade(config, revisions, sql=True)
    return buffer.getvalue()


def run_env(metadata: MetaData) -> None:
    """Body of every service's ``env.py``: online against the database, or offline (``--sql``)."""
    url = context.config.attributes.get("url") or context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    if context.is_offline_mode():
        schema = metadata.schema
        context.configure(
            url=url, target_metadata=metadata, version_table_schema=schema, literal_binds=True, transactional_ddl=True
        )
        with context.begin_transaction():
            context.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
            if schema and context.get_context().get_current_revision() is None:
                context.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            context.run_migrations()
        return
    asyncio.run(_run_async(url, metadata))


async def _run_async(url: str, metadata: MetaData) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync, metadata, url.startswith("sqlite"))
    finally:
        await engine.dispose()


def _run_sync(connection: Connection, metadata: MetaData, is_sqlite: bool) -> None:
    schema = metadata.schema
    if is_sqlite:
        connection = connection.execution_options(schema_translate_map={schema: None})
    else:
        connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))  # session-wide: every migration
        if schema:
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        connection.commit()
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=None if is_sqlite else schema,
        render_as_batch=is_sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


# ------------------------------------------------------------------------------ event tables


def create_event_tables(schema: str, *, outbox: bool = False, inbox: bool = False, deleted_users: bool = False) -> None:
    """Create the kernel's event tables in ``schema`` inside a migration (``OutboxMixin``,
    ``InboxMixin``, ``DeletedUserMixin``): every service's revision calls this instead of spelling
    the DDL again. A revision is history, so a later change to a mixin gets a new revision (and, if
    it is shared, a new helper next to this one); this one keeps writing what the mixins declare
    today, which ``tests/test_migrations.py`` compares against the models of every service."""
    from alembic import op

    if deleted_users:
        op.create_table(
            "deleted_users",
            sa.Column("user_id", sa.Uuid(), nullable=False),
            sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("user_id", name=op.f("pk_deleted_users")),
            schema=schema,
        )
    if inbox:
        op.create_table(
            "inbox",
            sa.Column("consumer", sa.String(), nullable=False),
            sa.Column("event_id", sa.String(), nullable=False),
            sa.Column("event_type", sa.String(), nullable=False),
            sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
            sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_inbox")),
            schema=schema,
        )
    if outbox:
        op.create_table(
            "outbox",
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("type", sa.String(length=100), nullable=False),
            sa.Column("payload", sa.JSON(), nullable=False),
            sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
            sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
            schema=schema,
        )
        op.create_index("ix_outbox_unpublished", "outbox", ["published_at", "occurred_at"], unique=False, schema=schema)


def drop_event_tables(schema: str, *, outbox: bool = False, inbox: bool = False, deleted_users: bool = False) -> None:
    """The downgrade of ``create_event_tables``."""
    from alembic import op

    if outbox:
        op.drop_index("ix_outbox_unpublished", table_name="outbox", schema=schema)
        op.drop_table("outbox", schema=schema)
    if inbox:
        op.drop_table("inbox", schema=schema)
    if deleted_users:
        op.drop_table("deleted_users", schema=schema)
