"""The /centers fast path (entries.py): the same bytes as the model path, a cache that never serves a
changed site, bounded memory, opening states that follow the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import select

from services.common.db import Database
from services.location.entries import EntryCache
from services.location.importer import import_rows
from services.location.models import Site
from services.location.schemas import LocationEntry
from services.location.service import LocationService
from services.location.sources import SourceFormat
from tests.location.conftest import (
    KECO_FILE,
    SAMPLE_KECO,
    SAMPLE_ZEROWASTE,
    ZEROWASTE_FILE,
    load,
    load_sites,
    reset,
    site,
)

ENTRIES = TypeAdapter(list[LocationEntry])
CENTERS = "/api/v1/locations/centers"
SEOUL_CITY_HALL = (37.5663, 126.9779)
# Instants (UTC) that land on different Seoul weekdays, weeks of the month, seasons and times of day.
INSTANTS = [
    datetime(2026, 1, 5, 0, 30, tzinfo=UTC),  # Monday 09:30 KST, first week
    datetime(2026, 7, 18, 13, 59, tzinfo=UTC),  # Saturday 22:59 KST, summer, third week
    datetime(2026, 3, 1, 15, 0, tzinfo=UTC),  # Monday 00:00 KST (just past midnight)
    datetime(2026, 8, 13, 5, 0, tzinfo=UTC),  # Thursday 14:00 KST, second week
]
CASES: list[dict[str, Any]] = [
    {"zoom": None},
    {"zoom": 3},
    {"zoom": 7},
    {"zoom": 11},
    {"zoom": 14},
    {"zoom": 5, "store_category": "refill_zero,upcycle_recycle"},
    {"zoom": 4, "pickup_category": "can"},
    {"zoom": None, "store_category": "general", "pickup_category": "general"},
]


def clocked(now: datetime, **kwargs: Any) -> LocationService:
    return LocationService(clock=lambda: now, **kwargs)


async def both(db: Database, service: LocationService, lat: float, lon: float, **case: Any) -> tuple[bytes, bytes]:
    params = {"radius": None, "store_category": None, "pickup_category": None, **case}
    async with db.session() as session:
        fast = await service.centers_json(session, lat=lat, lon=lon, **params)
    async with db.session() as session:
        slow = ENTRIES.dump_json(await service.centers(session, lat=lat, lon=lon, **params))
    return fast, slow


async def compare_everywhere(db: Database, every: int) -> int:
    async with db.session() as session:
        rows = (await session.execute(select(Site.latitude, Site.longitude).order_by(Site.id))).all()
    centres = [(r.latitude, r.longitude) for r in rows[::every]] + [SEOUL_CITY_HALL, (35.1796, 129.0756)]
    entries = 0
    for now in INSTANTS:
        service = clocked(now)
        for _ in range(2):  # cold cache, then every site from memory
            for lat, lon in centres:
                for case in CASES:
                    fast, slow = await both(db, service, lat, lon, **case)
                    assert fast == slow, (now, lat, lon, case)
                    entries += fast.count(b'"distance_km"')
        assert service.entries.hits > 0
    return entries


async def test_same_bytes_as_the_model_path_on_the_sample_data(location_db: Database) -> None:
    await reset(location_db)
    await load(location_db, SAMPLE_KECO, SourceFormat.KECO)
    await load(location_db, SAMPLE_ZEROWASTE, SourceFormat.ZEROWASTE)
    assert await compare_everywhere(location_db, every=3) > 500


@pytest.mark.parametrize("with_rows", [True, False], ids=["rows-in-index-query", "ids-then-primary-key"])
async def test_both_statement_variants_render_the_same_bytes(location_db: Database, with_rows: bool) -> None:
    # Each variant forced for every search, cold and warm (the service picks by the recent miss share).
    await reset(location_db)
    await load(location_db, SAMPLE_KECO, SourceFormat.KECO)
    await load(location_db, SAMPLE_ZEROWASTE, SourceFormat.ZEROWASTE)
    async with location_db.session() as session:
        rows = (await session.execute(select(Site.latitude, Site.longitude).order_by(Site.id))).all()
    service = clocked(INSTANTS[1])
    service.entries.wants_rows = lambda: with_rows  # type: ignore[method-assign]
    for _ in range(2):
        for lat, lon in [(r.latitude, r.longitude) for r in rows[::5]]:
            for case in CASES[:4]:
                fast, slow = await both(location_db, service, lat, lon, **case)
                assert fast == slow, (lat, lon, case, with_rows)
    assert service.entries.hits > 0
    assert service.entries.misses > 0


def test_the_statement_variant_follows_the_recent_misses() -> None:
    cache = EntryCache()
    assert cache.wants_rows()  # empty: every hit would be a miss
    for _ in range(10):
        cache.note(2, 200)
    assert not cache.wants_rows()  # warm (1 % misses): ids only, the few misses by primary key
    for _ in range(5):
        cache.note(25, 50)
    assert cache.wants_rows()  # the map moved to an area not held (50 % misses): rows again
    cache.note(0, 0)  # an empty page says nothing
    assert cache.wants_rows()
    assert EntryCache(capacity=0).wants_rows()  # no cache: every search needs the rows


@pytest.mark.skipif(not (KECO_FILE.is_file() and ZEROWASTE_FILE.is_file()), reason="needs the public datasets")
async def test_same_bytes_as_the_model_path_on_the_public_data(location_db: Database) -> None:
    await reset(location_db)
    await load(location_db, KECO_FILE, SourceFormat.KECO)
    await load(location_db, ZEROWASTE_FILE, SourceFormat.ZEROWASTE)
    # Every hours text, name/address/phone shape and category of both files, at four instants.
    assert await compare_everywhere(location_db, every=23) > 5000


async def test_http_body_is_the_fast_path(
    location_db: Database, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await load_sites(location_db, site(1, 37.5663, 126.9779, hours_mon="09:00 ~ 18:00", phone_basic="02-120"))
    response = await client.get(CENTERS, params={"lat": 37.5663, "lon": 126.9779, "zoom": 3}, headers=auth)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert ENTRIES.dump_json(ENTRIES.validate_json(response.content)) == response.content
    assert [e["phone"] for e in response.json()] == ["02-120"]


async def test_a_reimported_change_is_never_served_from_the_cache(location_db: Database) -> None:
    await load_sites(location_db, site(7, 37.5663, 126.9779, name="옛 이름"), site(8, 37.5664, 126.9779))
    service = clocked(INSTANTS[0])
    first, _ = await both(location_db, service, *SEOUL_CITY_HALL, zoom=3)
    assert "옛 이름".encode() in first
    # The import runs elsewhere (another process in production): the service is not told.
    async with location_db.session() as session:
        summary = await import_rows(session, [site(7, 37.5663, 126.9779, name="새 이름", hours_mon="상시")])
    assert summary.updated == 1
    hits_before = service.entries.hits
    fast, slow = await both(location_db, service, *SEOUL_CITY_HALL, zoom=3)
    assert fast == slow
    assert "새 이름".encode() in fast
    assert "옛 이름".encode() not in fast
    assert b'"is_open":true,"start_time":"00:00","end_time":"24:00"' in fast
    assert service.entries.hits == hits_before + 1  # the unchanged neighbour still came from memory


async def test_a_reimported_site_that_moved_is_found_at_its_new_place(location_db: Database) -> None:
    # PostgreSQL: the search walks the stored point (migration 0002), which a trigger keeps in step
    # with the coordinates whoever writes them; SQLite: the R*Tree, kept by its triggers.
    await load_sites(location_db, site(7, 37.5663, 126.9779), site(8, 37.5664, 126.9779))
    service = clocked(INSTANTS[0])
    before, _ = await both(location_db, service, *SEOUL_CITY_HALL, zoom=3)
    assert before.count(b'"id"') == 2
    async with location_db.session() as session:
        summary = await import_rows(session, [site(7, 35.1796, 129.0756)])  # to Busan
    assert summary.updated == 1
    here, slow = await both(location_db, service, *SEOUL_CITY_HALL, zoom=3)
    assert here == slow
    assert here.count(b'"id"') == 1
    there, slow = await both(location_db, service, 35.1796, 129.0756, zoom=3)
    assert there == slow
    assert b'"distance_km":0.0,' in there


async def test_the_cache_is_bounded_and_can_be_off(location_db: Database) -> None:
    await load_sites(location_db, *(site(n, 37.5663 + n * 1e-4, 126.9779) for n in range(1, 11)))
    for capacity in (3, 0):
        service = clocked(INSTANTS[0], entry_cache_size=capacity)
        for _ in range(2):
            fast, slow = await both(location_db, service, *SEOUL_CITY_HALL, zoom=3)
            assert fast == slow
            assert fast.count(b'"id"') == 10
        assert len(service.entries.sites) == capacity


async def test_opening_state_follows_the_clock_across_minutes(location_db: Database) -> None:
    await load_sites(location_db, site(1, 37.5663, 126.9779, hours_mon="09:00 ~ 18:00"))
    now = datetime(2026, 1, 5, 8, 59, tzinfo=UTC)  # Monday 17:59 KST
    clock: Callable[[], datetime] = lambda: now  # noqa: E731
    service = LocationService(clock=lambda: clock())
    states = []
    for step in range(3):  # 17:59, 18:00 (end is inclusive), 18:01
        clock = lambda step=step: now + timedelta(minutes=step)  # noqa: E731
        fast, slow = await both(location_db, service, *SEOUL_CITY_HALL, zoom=3)
        assert fast == slow
        states.append(b'"is_open":true' in fast)
    assert states == [True, True, False]


@pytest.mark.real_only
async def test_reads_survive_a_dropped_connection_and_need_no_transaction(location_db: Database) -> None:
    from sqlalchemy import event, text

    from services.location.reads import ReadSessions

    await load_sites(location_db, site(1, 37.5663, 126.9779))
    reads = ReadSessions(location_db)
    assert reads.engine is not None
    statements: list[str] = []
    event.listen(reads.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    service = clocked(INSTANTS[0])

    async def centers() -> bytes:
        return await reads.run(lambda s: service.centers_json(s, lat=37.5663, lon=126.9779, zoom=3, radius=None,
                                                              store_category=None, pickup_category=None))  # fmt: skip

    try:
        first = await centers()  # cold: the entries' columns come with the index query, no second read
        assert len(statements) == 1
        pid = await reads.run(lambda s: s.scalar(text("SELECT pg_backend_pid()")))
        statements.clear()
        assert await centers() == first  # from the cache: the index query alone, no BEGIN/COMMIT
        assert len(statements) == 1

        async def two_transaction_ids(session: Any) -> tuple[int, int]:
            return (
                await session.scalar(text("SELECT txid_current()")),
                await session.scalar(text("SELECT txid_current()")),
            )

        first_id, second_id = await reads.run(two_transaction_ids)
        assert first_id != second_id  # autocommit: no BEGIN … COMMIT around the statements
        # The pooled connection dies (a database restart, a proxy timeout): the next search still answers.
        async with location_db.session() as session:
            await session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        assert await centers() == first
    finally:
        await reads.dispose()


@pytest.mark.real_only
async def test_cluster_rewrites_the_table_in_spatial_order_and_keeps_the_answers(location_db: Database) -> None:
    from sqlalchemy import text

    from services.location.cli import _cluster

    await load_sites(location_db, *(site(n, 37.5663 + (n % 7) * 1e-3, 126.9779 + n * 1e-4) for n in range(1, 40)))
    service = clocked(INSTANTS[0], entry_cache_size=0)
    before, _ = await both(location_db, service, *SEOUL_CITY_HALL, zoom=7)
    await _cluster(location_db.url)
    after, slow = await both(location_db, service, *SEOUL_CITY_HALL, zoom=7)
    assert after == before == slow
    assert after.count(b'"id"') == 39
    async with location_db.session() as session:
        clustered = await session.scalar(
            text("SELECT indisclustered FROM pg_index WHERE indexrelid = 'location.ix_sites_earth_point'::regclass")
        )
    assert clustered  # a later plain `CLUSTER location.sites` reuses the spatial index
