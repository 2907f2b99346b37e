"""Benchmark of the drop-off map's nearby search on PostgreSQL (prints numbers; docs/location.md).

1. Creates its own database, migrates it, writes 1,000,000 synthetic KECO-format sites clustered like
   Korea's population (Gaussian clusters around cities plus a thin rural spread) and imports them
   with the real import job (CSV parse → normalise → classify → COPY). Reports rows/s.
2. Measures GET /centers at zoom 3, 7 and 11 in a dense area (central Seoul) and a sparse one
   (inland Gangwon): the server-side service call (SQL + building entries) and the whole request
   through the ASGI app in-process (auth, validation, JSON), p50/p99 over jittered points.
3. Runs, on the same data, the naive query that computes ``earth_distance`` for every row and
   sorts, and reports how many times slower it is.
4. Drops the database (unless ``--database NAME`` asked to keep it).

Usage: ``uv run python bench/location_centers.py [--rows 1000000] [--requests 300] [--naive-runs 5]
[--database NAME]`` (PostgreSQL at ECO2_BENCH_PG_ADMIN_URL, default
postgresql://postgres@127.0.0.1:5432/postgres).

- ``--rows``: synthetic sites to generate and import (default 1,000,000).
- ``--requests``: measured requests per (area, zoom), after 20 warm-up ones (default 300).
- ``--naive-runs``: runs of the naive full-scan query per (area, zoom) (default 5).
- ``--variants auto,rows,ids``: the index statement of the service call — ``auto`` as the route
  chooses it (by the entry cache's recent misses), ``rows`` always with the entries' columns, ``ids``
  always ids only (misses read by a second primary-key query); each variant has its own cache, and
  the ``server``/``naive`` columns are measured once per row (default ``auto``).
- ``--database NAME``: use (and keep) this database; when it already holds the sites, generation
  and import are skipped — so that code changes can be measured on the same imported data. Drop it
  by hand afterwards (``DROP DATABASE NAME``).

Columns: ``service`` is the service call as the router makes it (its own session, SQL, building the
response body: ``LocationService.centers_json``), wall p50/p99 and this thread's CPU p99; ``server`` is the whole request inside the ASGI
app from arrival to last byte (``asgi_timer.py``: JWT check, validation, service, JSON), wall p50/p99
and CPU p99; ``naive`` is the full-scan query; ``ratio`` = naive p50 / service p50; ``cached`` = share
of the measured service calls' entries whose fixed part came from the entry cache (the 20 warm-up
calls fill it; a request in a new area reads the missing sites in one extra primary-key query).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import itertools
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from bench.asgi_timer import ServerTimer
from bench.pgbench import bench_database, load_average, percentile, timed, timed_cpu
from services.common.config import CommonSettings, Environment
from services.common.db import Database
from services.common.migrations import upgrade
from services.location.app import create_app
from services.location.config import LocationSettings
from services.location.importer import import_file
from services.location.models import KECO_COLUMNS, SCHEMA
from services.location.reads import ReadSessions
from services.location.service import LocationService, zoom_plan
from services.location.sources import SourceFormat
from tests.support.clients import app_client
from tests.support.tokens import auth_headers

# (lat, lon, share of sites, spread σ in km): the large cities carry most of the population.
CITIES = [
    (37.5665, 126.9780, 0.30, 9),  # Seoul
    (37.4138, 127.5183, 0.14, 25),  # Gyeonggi ring
    (35.1796, 129.0756, 0.10, 8),  # Busan
    (37.4563, 126.7052, 0.06, 7),  # Incheon
    (35.8714, 128.6014, 0.07, 7),  # Daegu
    (36.3504, 127.3845, 0.04, 6),  # Daejeon
    (35.1595, 126.8526, 0.04, 6),  # Gwangju
    (35.5384, 129.3114, 0.03, 6),  # Ulsan
    (35.2280, 128.6811, 0.03, 6),  # Changwon
    (36.6424, 127.4890, 0.02, 5),  # Cheongju
    (35.8242, 127.1480, 0.02, 5),  # Jeonju
    (33.4996, 126.5312, 0.02, 8),  # Jeju
]
RURAL_SHARE = 0.13  # the rest: uniform over the mainland's box
DENSE = (37.5665, 126.9780)  # central Seoul
SPARSE = (37.55, 128.45)  # inland Gangwon (Pyeongchang area)
ZOOMS = (3, 7, 11)
HEADER = ["positnSn", *KECO_COLUMNS]
ITEMS = ["투명페트병\n알루미늄 캔", "종이\n유리병", "의류", "플라스틱(PP)\n무색페트병", ""]
NAMES = ["자원순환가게", "행정복지센터 무인회수기", "재활용 정거장", "제로웨이스트 리필샵", "아파트 수거함"]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    weights = [c[2] for c in CITIES] + [RURAL_SHARE]
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        blank = [""] * len(HEADER)
        for n in range(1, rows + 1):
            pick = rng.choices(range(len(weights)), weights)[0]
            if pick == len(CITIES):
                lat, lon = rng.uniform(34.6, 38.2), rng.uniform(126.4, 129.3)
            else:
                clat, clon, _, sigma = CITIES[pick]
                lat = rng.gauss(clat, sigma / 111.0)
                lon = rng.gauss(clon, sigma / 88.0)
            row = blank.copy()
            row[0] = str(n)
            row[1] = f"{NAMES[n % len(NAMES)]} {n}"
            row[6], row[7] = f"{min(max(lat, 33.0), 39.0):.7f}", f"{min(max(lon, 124.0), 132.0):.7f}"
            row[12:19] = ["09:00 ~ 18:00"] * 5 + ["휴무", "상시"]
            row[32] = ITEMS[n % len(ITEMS)]
            writer.writerow(row)


def jitter(rng: random.Random, centre: tuple[float, float], km: float = 2.0) -> tuple[float, float]:
    return centre[0] + rng.uniform(-km, km) / 111.0, centre[1] + rng.uniform(-km, km) / 88.0


NAIVE = text(
    """SELECT id, earth_distance(ll_to_earth(latitude, longitude), ll_to_earth(:lat, :lon)) * 6371000 / earth() AS d
       FROM location.sites
       WHERE earth_distance(ll_to_earth(latitude, longitude), ll_to_earth(:lat, :lon)) * 6371000 / earth() <= :radius
       ORDER BY d, id LIMIT :limit"""
)


def entry_cache_kb(service: LocationService) -> float:
    """Approximate memory per cached site (the fragments, the tuple of hours, the dict slot)."""
    sites = list(service.entries.sites.values())[:2000]
    if not sites:
        return 0.0
    size = sum(
        sys.getsizeof(s) + sum(sys.getsizeof(part) for part in (s.content_hash, s.head, s.middle, s.tail, s.hours))
        for s in sites
    )
    return size / len(sites) / 1024 + 0.1  # + the dict entry and the int key, roughly


def forced(variant: str) -> LocationService:
    """A service whose index statement is chosen as the route does (``auto``: by the cache's recent
    misses) or always the same (``rows``: entries' columns with the index query; ``ids``: ids only,
    misses by a second primary-key query)."""
    service = LocationService()
    if variant != "auto":
        service.entries.wants_rows = lambda: variant == "rows"  # type: ignore[method-assign]
    return service


async def measure(url: str, common: CommonSettings, requests: int, naive_runs: int, variants: list[str]) -> None:
    db = Database(url, SCHEMA)
    reads = ReadSessions(db)
    services = {variant: forced(variant) for variant in variants}
    service = services[variants[0]]
    timer = ServerTimer(create_app(common=common, settings=LocationSettings(environment="test")))
    headers = auth_headers(common)
    rng = random.Random(11)
    print(f"\n{load_average()} at the start of the measurements")
    print(f"\n{'area':<7}{'zoom':>5}{'variant':>8}{'rows':>6}{'service p50':>13}{'p99':>8}{'cpu p99':>9}{'server p50':>12}"
          f"{'p99':>8}{'cpu p99':>9}{'naive p50':>11}{'ratio':>8}{'cached':>9}")  # fmt: skip
    async with app_client(timer) as client:  # type: ignore[arg-type]
        for area, centre in (("dense", DENSE), ("sparse", SPARSE)):
            for zoom in ZOOMS:
                radius, limit = zoom_plan(zoom, None)
                points = [jitter(rng, centre) for _ in range(requests)]
                measured = {}
                for variant, service in services.items():
                    found: list[int] = []

                    async def service_call(
                        points: list[tuple[float, float]] = points,
                        found: list[int] = found,
                        zoom: int = zoom,
                        service: LocationService = service,
                    ) -> None:
                        lat, lon = points[len(found) % len(points)]
                        body = await reads.run(  # what the route does (reads.py + centers_json)
                            lambda session: service.centers_json(
                                session, lat=lat, lon=lon, zoom=zoom, radius=None, store_category=None,
                                pickup_category=None,
                            )
                        )  # fmt: skip
                        found.append(body.count(b'"distance_km":'))

                    await timed(service_call, 20)  # warm the pool and the plan cache
                    found.clear()
                    hits, misses = service.entries.hits, service.entries.misses
                    svc, svc_cpu = await timed_cpu(service_call, requests)
                    hits, misses = service.entries.hits - hits, service.entries.misses - misses
                    measured[variant] = (svc, svc_cpu, statistics.mean(found), hits, misses)

                calls = itertools.count()

                async def http_call(
                    points: list[tuple[float, float]] = points, calls: itertools.count[int] = calls, zoom: int = zoom
                ) -> None:
                    lat, lon = points[next(calls) % len(points)]
                    response = await client.get(
                        "/api/v1/locations/centers", params={"lat": lat, "lon": lon, "zoom": zoom}, headers=headers
                    )
                    assert response.status_code == 200

                await timed(http_call, 20)
                timer.take()
                await timed(http_call, requests)
                http, http_cpu = timer.take()

                async def naive_call(
                    points: list[tuple[float, float]] = points, radius: int = radius, limit: int = limit
                ) -> None:
                    lat, lon = points[rng.randrange(len(points))]
                    async with db.session() as session:
                        await session.execute(NAIVE, {"lat": lat, "lon": lon, "radius": radius, "limit": limit})

                naive = await timed(naive_call, naive_runs)
                for variant, (svc, svc_cpu, found_mean, hits, misses) in measured.items():
                    ratio = statistics.median(naive) / statistics.median(svc)
                    print(
                        f"{area:<7}{zoom:>5}{variant:>8}{round(found_mean):>6}"
                        f"{statistics.median(svc):>11.2f}ms{percentile(svc, 0.99):>6.2f}ms{percentile(svc_cpu, 0.99):>7.2f}ms"
                        f"{statistics.median(http):>10.2f}ms{percentile(http, 0.99):>6.2f}ms{percentile(http_cpu, 0.99):>7.2f}ms"
                        f"{statistics.median(naive):>9.0f}ms{ratio:>7.0f}×{100 * hits / max(hits + misses, 1):>8.1f}%"
                    )  # fmt: skip
    await reads.dispose()
    print(f"\n{load_average()} at the end of the measurements")
    print(f"entry cache: {len(service.entries.sites):,} sites held, {entry_cache_kb(service):.2f} KB each")
    async with db.session() as session:
        lat, lon = DENSE
        # The statement the service runs (index.py), shown with the planner's choice.
        plan = await session.execute(
            text(
                "EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM location.sites WHERE earth_box(ll_to_earth(:lat, :lon), 60000) "
                "@> earth_point ORDER BY earth_point <-> ll_to_earth(:lat, :lon) LIMIT 51"
            ),
            {"lat": lat, "lon": lon},
        )
        print("\nindexed plan (zoom 3, dense):")
        for (line,) in plan.all():
            print("  " + line)
    await db.dispose()


async def main(rows: int, requests: int, naive_runs: int, database: str | None, variants: list[str]) -> None:
    async with bench_database(database, keep=database is not None) as bench:
        with tempfile.TemporaryDirectory() as tmp:
            common = CommonSettings(
                environment=Environment.TEST,
                database_url=bench.url,
                data_dir=Path(tmp),
                log_level="WARNING",
                internal_token="bench-internal-token",
            )
            await asyncio.to_thread(upgrade, SCHEMA, bench.url)
            db = Database(bench.url, SCHEMA)
            async with db.session() as session:
                stored = int(await session.scalar(text(f"SELECT count(*) FROM {SCHEMA}.sites")) or 0)
            if stored:
                print(f"database {bench.name}: {stored:,} sites already imported, generation and import skipped")
            else:
                source = Path(tmp) / "synthetic_keco.csv"
                started = time.perf_counter()
                generate(source, rows)
                print(f"generated {rows:,} clustered sites in {time.perf_counter() - started:.1f}s "
                      f"({source.stat().st_size / 1e6:.0f} MB CSV)")  # fmt: skip
                started = time.perf_counter()
                async with db.session() as session:
                    summary = await import_file(session, source, SourceFormat.KECO)
                elapsed = time.perf_counter() - started
                print(
                    f"import: {summary.as_dict()} in {elapsed:.1f}s → {rows / elapsed:,.0f} rows/s ({load_average()})"
                )
            await db.dispose()  # the import ANALYZEd the table (importer.ANALYZE_AFTER)
            await measure(bench.url, common, requests, naive_runs, variants)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--naive-runs", type=int, default=5)
    parser.add_argument("--database", default=None, help="use and keep this database (import skipped if it has sites)")
    parser.add_argument(
        "--variants", default="auto", help="comma-separated: auto (the route's choice), rows, ids (forced statements)"
    )
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.requests, args.naive_runs, args.database, args.variants.split(",")))
