"""PostgreSQL's side of a ``/centers`` search, measured with EXPLAIN (ANALYZE, BUFFERS) (prints numbers;
docs/location.md, "Physical order").

For jittered points around central Seoul (dense) and inland Gangwon (sparse) at zoom 3, 7 and 11, runs
the service's own index statements (``index._KNN``) in both variants — ids only (a warm cache) and
with the entries' columns (``entries.ENTRY_JSON_SQL``, a cold cache) — and reports the server's
execution time p50/p99 and the buffers each search touched (shared hits + reads: heap pages of the
returned sites plus index pages). Run it on two databases (as imported, and after
``eco2 location cluster``) to see what the physical order of the table changes.

Usage: ``uv run python bench/location_plan.py --database NAME [--database NAME2] [--runs 200]``
(databases on the shared server that hold the 1 M sites of bench/location_centers.py; nothing is
written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics

import asyncpg

from bench.location_centers import DENSE, SPARSE, ZOOMS, jitter
from bench.pgbench import ADMIN_URL, load_average, percentile
from services.location.entries import ENTRY_JSON_SQL
from services.location.index import _KNN, Filters, _hits_sql
from services.location.present import EARTH_RADIUS_M
from services.location.service import zoom_plan


async def measure(database: str, runs: int) -> None:
    connection = await asyncpg.connect(ADMIN_URL.rsplit("/", 1)[0] + "/" + database)
    try:
        pages = await connection.fetchval("SELECT relpages FROM pg_class WHERE oid = 'location.sites'::regclass")
        correlation = await connection.fetchval(
            "SELECT correlation FROM pg_stats WHERE schemaname = 'location' AND tablename = 'sites' "
            "AND attname = 'latitude'"
        )
        print(f"\n{database}: {pages:,} heap pages, latitude correlation {correlation}; {load_average()}")
        print(f"{'area':<7}{'zoom':>5}{'variant':>9}{'rows':>6}{'exec p50':>10}{'p99':>8}{'buffers':>9}{'read':>6}")
        rng = random.Random(5)
        for area, centre in (("dense", DENSE), ("sparse", SPARSE)):
            for zoom in ZOOMS:
                radius, limit = zoom_plan(zoom, None)
                for variant, row_sql in (("ids", None), ("rows", ENTRY_JSON_SQL)):
                    sql, _ = _hits_sql(_KNN, Filters(), row_sql)
                    explain = await connection.prepare(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}")
                    times, buffers, reads, rows = [], [], [], []
                    for _ in range(runs):
                        lat, lon = jitter(rng, centre)
                        params = (lat, lon, EARTH_RADIUS_M, radius * 1.000001, limit + 1)
                        plan = json.loads(await explain.fetchval(*params))[0]
                        top = plan["Plan"]
                        times.append(plan["Execution Time"])
                        buffers.append(top["Shared Hit Blocks"] + top["Shared Read Blocks"])
                        reads.append(top["Shared Read Blocks"])
                        rows.append(top["Actual Rows"])
                    print(
                        f"{area:<7}{zoom:>5}{variant:>9}{round(statistics.mean(rows)):>6}"
                        f"{statistics.median(times):>8.2f}ms{percentile(times, 0.99):>6.2f}ms"
                        f"{statistics.mean(buffers):>9.0f}{statistics.mean(reads):>6.0f}"
                    )
    finally:
        await connection.close()


async def main(databases: list[str], runs: int) -> None:
    for database in databases:
        await measure(database, runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", action="append", required=True)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.database, args.runs))
