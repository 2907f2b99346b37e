"""The previous release's queries still work on the new schema (real mode).

During a rollout the migration Job runs first and the previous release keeps serving until its pods
are replaced, so every statement it issues must still run against the head schema. The previous
release's statements are its recorded query corpus (``previous_release.json``, written by
``make release-queries`` at each release — see recorder.py and docs/migrations.md). Each one is:

- prepared on a database migrated to head (PostgreSQL parses, resolves every table, column, type
  and operator, and infers the parameter types: a dropped or renamed column or table, or a type
  change the old code's parameters no longer fit, fails here);
- for INSERTs, compared with the head schema's columns that are NOT NULL without a default: a new
  required column the old code does not fill would fail every insert it makes.

Why a recorded corpus and not the previous release's code from git: running the previous release
means installing its locked dependencies and running its suite a second time in CI (minutes on a
2-core runner) for the same set of statements, which the corpus holds exactly.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.common.config import CommonSettings
from services.common.migrations import upgrade_async
from services.registry import SERVICES
from tests.support.databases import scratch_database as scratch

pytestmark = pytest.mark.real_only

CORPUS = Path(__file__).with_name("previous_release.json")
# Services registered after the corpus was recorded: no previous release ran them, so none of their
# statements can break. The next ``make release-queries`` records them; then remove them here.
NEW_SINCE_CORPUS = frozenset({"info", "chat"})
INSERT = re.compile(r'^\s*INSERT INTO ("?\w+"?)\.("?\w+"?)\s*\(([^)]*)\)', re.IGNORECASE)


def corpus() -> dict[str, list[str]]:
    assert CORPUS.exists(), f"{CORPUS} missing: record it with `make release-queries` (docs/migrations.md)"
    return dict(json.loads(CORPUS.read_text()))


async def required_columns(conn: asyncpg.Connection) -> dict[tuple[str, str], set[str]]:
    """(schema, table) -> columns an INSERT must name: NOT NULL, no default, not generated."""
    rows = await conn.fetch(
        """SELECT table_schema, table_name, column_name FROM information_schema.columns
           WHERE is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO' AND is_generated = 'NEVER'
             AND table_schema = ANY($1::text[])""",
        [entry.db_schema for entry in SERVICES.values()],
    )
    required: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        required.setdefault((row["table_schema"], row["table_name"]), set()).add(row["column_name"])
    return required


async def replay(url: str, statements: dict[str, list[str]]) -> list[str]:
    """Every statement that would fail on the schema at ``url``, with the reason."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    failures: list[str] = []
    try:
        required = await required_columns(conn)
        for service, queries in statements.items():
            for sql in queries:
                try:
                    await conn.prepare(sql)
                except asyncpg.PostgresError as exc:
                    failures.append(f"{service}: {type(exc).__name__}: {exc}\n    {sql[:300]}")
                    continue
                insert = INSERT.match(sql)
                if insert:
                    schema, table = (part.strip('"') for part in insert.group(1, 2))
                    named = {column.strip().strip('"') for column in insert.group(3).split(",")}
                    missing = required.get((schema, table), set()) - named
                    if missing:
                        failures.append(
                            f"{service}: INSERT into {schema}.{table} leaves required {sorted(missing)} out\n    {sql[:300]}"
                        )
    finally:
        await conn.close()
    return failures


async def test_every_service_has_a_recorded_corpus() -> None:
    statements = corpus()
    with_schema = {name for name, entry in SERVICES.items() if entry.has_migrations} - NEW_SINCE_CORPUS
    assert with_schema <= set(statements), f"no recorded queries for {sorted(with_schema - set(statements))}"
    assert NEW_SINCE_CORPUS.isdisjoint(statements), "recorded now: remove them from NEW_SINCE_CORPUS"
    assert all(statements[name] for name in with_schema)


async def test_the_previous_release_queries_run_on_the_head_schema(migrated: CommonSettings) -> None:
    assert migrated.database_url is not None
    failures = await replay(migrated.database_url, corpus())
    assert not failures, "the previous release would break on this schema:\n" + "\n".join(failures)


@pytest.fixture
async def scratch_database(migrated: CommonSettings) -> AsyncIterator[str]:
    """A database of this test alone, migrated to head, that the test may break."""
    async with scratch(migrated, "eco2_replay") as url:
        for service, entry in SERVICES.items():
            if entry.has_migrations:
                await upgrade_async(service, url)
        yield url


async def test_the_replay_catches_a_contract_step_shipped_too_early(scratch_database: str) -> None:
    """The check itself: a rename and a new required column, as a careless migration would do them."""
    conn = await asyncpg.connect(scratch_database.replace("postgresql+asyncpg://", "postgresql://", 1))
    try:
        await conn.execute("ALTER TABLE my.profiles RENAME COLUMN nickname TO display_nickname")
        await conn.execute("ALTER TABLE scan.jobs ADD COLUMN priority integer NOT NULL")
    finally:
        await conn.close()
    failures = await replay(scratch_database, corpus())
    assert any(f.startswith("my: UndefinedColumnError") and "nickname" in f for f in failures), failures
    assert any(f.startswith("scan: INSERT into scan.jobs") and "priority" in f for f in failures), failures
