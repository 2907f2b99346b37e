"""Migration 0002 (PostgreSQL): the stored earth point of every site — backfilled for the rows that
exist, kept by a trigger for every later write (including the previous release's, which does not
know the column), bit for bit ``ll_to_earth(latitude, longitude)``, and removed by the downgrade."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable

import asyncpg
import pytest
from alembic import command

from services.common.config import CommonSettings
from services.common.migrations import alembic_config, upgrade_async
from services.location.models import SCHEMA
from tests.support.databases import scratch_database

pytestmark = pytest.mark.real_only

# What the previous release's importer writes: the row without the new column (its COPY and UPDATE
# column lists are the model's, which does not declare it).
OLD_INSERT = """INSERT INTO location.sites (id, source, source_pk, latitude, longitude, source_metadata,
    store_category, pickup_mask, name_key, search_key, content_hash, created_at, updated_at)
    VALUES ($1::bigint, 'keco', $1::bigint::text, $2, $3, '{}', 'general', 0, '', '', 'h', now(), now())"""
SAME_POINT = "SELECT count(*) FROM location.sites WHERE earth_point::text IS DISTINCT FROM ll_to_earth(latitude, longitude)::text"


def connect(url: str) -> Awaitable[asyncpg.Connection]:
    return asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))


@pytest.fixture
async def scratch(migrated: CommonSettings) -> AsyncIterator[str]:
    """A database of this test alone with the location schema at revision 0001."""
    async with scratch_database(migrated, "eco2_earth") as url:
        await upgrade_async(SCHEMA, url, "0001")
        yield url


async def test_backfill_trigger_constraint_index_and_downgrade(scratch: str) -> None:
    conn = await connect(scratch)
    try:
        await _upgrade_then_write(scratch, conn)
    finally:
        await conn.close()
    await asyncio.to_thread(command.downgrade, alembic_config(SCHEMA, scratch), "0001")
    conn = await connect(scratch)
    try:
        columns = {r["attname"] for r in await conn.fetch(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'location.sites'::regclass AND attnum > 0 AND NOT attisdropped"
        )}  # fmt: skip
        assert "earth_point" not in columns
        assert await conn.fetchval("SELECT to_regclass('location.ix_sites_earth_point')") is None
        await conn.execute(OLD_INSERT, 30_001, 37.5, 127.0)  # writes work without the trigger's function
    finally:
        await conn.close()


async def _upgrade_then_write(url: str, conn: asyncpg.Connection) -> None:
    # More rows than one backfill batch, with a gap in the ids (the batches walk id ranges).
    rows = [(n, 33.1 + (n % 600) * 0.01, 124.6 + (n % 700) * 0.01) for n in [*range(1, 6001), *range(20_000, 20_050)]]
    await conn.executemany(OLD_INSERT, rows)

    await upgrade_async(SCHEMA, url)

    assert await conn.fetchval("SELECT count(*) FROM location.sites WHERE earth_point IS NULL") == 0
    assert await conn.fetchval(SAME_POINT) == 0  # the stored point is the expression's value, exactly
    assert await conn.fetchval(
        "SELECT convalidated FROM pg_constraint WHERE conname = 'ck_sites_earth_point'"
    )  # the search may rely on every row having its point
    assert await conn.fetchval(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'location.ix_sites_earth_point'::regclass"
    )

    # The previous release keeps writing during the rollout: its rows get their point too.
    await conn.execute(OLD_INSERT, 30_000, 37.5665, 126.978)
    await conn.execute("UPDATE location.sites SET latitude = 35.1796, longitude = 129.0756 WHERE id = 1")
    assert await conn.fetchval(SAME_POINT) == 0
    moved = await conn.fetchval("SELECT earth_point::text FROM location.sites WHERE id = 1")
    assert moved == await conn.fetchval("SELECT ll_to_earth(35.1796, 129.0756)::text")
    with pytest.raises(asyncpg.CheckViolationError):  # nothing can leave a site off the map
        await conn.execute("UPDATE location.sites SET earth_point = NULL WHERE id = 2")
