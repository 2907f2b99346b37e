"""Indexed nearby search: the sites within a radius, nearest first, filters inside the query.

PostgreSQL: cube + earthdistance. A GiST index on the points on a sphere in 3-D — the expression
``ll_to_earth(latitude, longitude)`` for ``nearby()``, the stored column ``earth_point`` (the same
value, kept by a trigger; migration 0002) for ``nearby_hits`` — answers both the radius pre-filter
(``earth_box(...) @> point``) and the ordering: ``point <-> here`` is the straight-line (chord)
distance, which grows monotonically with great-circle distance, so a KNN index scan returns rows
nearest-first and stops after ``limit`` rows instead of computing a distance for every site.
``earth_distance`` then gives the exact great-circle distance; it is rescaled from the extension's
earth radius (``earth()``, 6378.168 km) to the contract's mean radius (6371 km).

SQLite (embedded): an R*Tree on (lat, lon) finds the sites in the radius's bounding box; their exact
haversine distance is computed here, then sorted. Embedded databases are small (dev, tests), so the
box scan is cheap; both paths return the same ids in the same order (tested on the public data).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, and_, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from services.location.models import SCHEMA, Site, sites_rtree
from services.location.present import EARTH_RADIUS_M, haversine_m
from services.location.text import like_pattern

TIE_M = 1e-6  # distances closer than this are the same point (float noise of two formulas)


@dataclass(frozen=True)
class Filters:
    stores: list[str] | None = None
    pickup_mask: int | None = None  # sites whose mask shares a bit
    text_key: str | None = None  # keyword search: name or address/keywords contain it

    def clauses(self) -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        if self.stores is not None:
            clauses.append(Site.store_category.in_(self.stores))
        if self.pickup_mask is not None:
            clauses.append(Site.pickup_mask.op("&")(self.pickup_mask) != 0)
        if self.text_key is not None:
            clauses.append(text_match(self.text_key))
        return clauses


def text_match(key: str) -> ColumnElement[bool]:
    pattern = like_pattern(key)
    return or_(Site.name_key.like(pattern, escape="\\"), Site.search_key.like(pattern, escape="\\"))


async def nearby(
    session: AsyncSession, lat: float, lon: float, radius_m: float, limit: int, filters: Filters = Filters()
) -> list[tuple[Site, float]]:
    """Sites within ``radius_m`` great-circle metres, sorted by (distance, id), at most ``limit``."""
    if session.get_bind().dialect.name == "postgresql":
        rows = await _nearby_postgres(session, (Site,), lambda site: site.id, lat, lon, radius_m, limit, filters)
        return [(site, metres) for site, metres in rows]
    hits = await _nearby_sqlite(session, lat, lon, radius_m, limit, filters)
    if not hits:
        return []
    ids = [site_id for site_id, _, _ in hits]
    sites = {s.id: s for s in (await session.scalars(select(Site).where(Site.id.in_(ids)))).all()}
    return [(sites[site_id], metres) for site_id, _, metres in hits]


Hit = tuple[int, str, float] | tuple[int, str, float, str]


async def nearby_hits(
    session: AsyncSession,
    lat: float,
    lon: float,
    radius_m: float,
    limit: int,
    filters: Filters = Filters(),
    *,
    row_sql: str | None = None,
) -> list[Hit]:
    """Same search as ``nearby``, but only ``(id, content_hash, metres)`` per site: the list the
    entry cache (``entries.py``) renders from, without reading whole rows.

    ``row_sql`` (PostgreSQL only): one more SQL expression over the site's row, returned as a 4th
    value per hit — the entry's columns when the caller expects cache misses, so that they come
    back in this same round trip instead of a second query."""
    if session.get_bind().dialect.name != "postgresql":
        return list(await _nearby_sqlite(session, lat, lon, radius_m, limit, filters))
    if filters.text_key is not None:  # keyword search's shape: the expression-built query below
        columns = (Site.id, Site.content_hash)
        return await _nearby_postgres(session, columns, int, lat, lon, radius_m, limit, filters)
    return await _hits_postgres(session, lat, lon, radius_m, limit, filters, row_sql)


# The statement ``_nearby_postgres`` builds for (id, content_hash), written out once: building and
# compiling the expression cost ≈ 1 ms of CPU per request, more than PostgreSQL spends answering it.
# Same arithmetic in the same order (distances identical to the last bit: tests compare the bytes).
#
# Per returned row PostgreSQL evaluates every expression of the select list — including the ORDER
# BY value, which it projects rather than taking from the index — so the statement reads the site's
# stored point (``earth_point``, migration 0002, filled by a trigger from the coordinates) instead of
# computing ``ll_to_earth(latitude, longitude)`` (an SQL function call plus the ``earth`` domain's three
# checks) twice per row, and takes the searched point from a scalar subquery: an InitPlan, evaluated
# once per statement. Written as ``ll_to_earth($1, $2)`` it is evaluated per row as well once
# PostgreSQL switches the prepared statement to its generic plan (after five executions), where the
# parameters are not constants. 200-site page on 1 M sites: 4.3 → 0.8 ms (docs/location.md, third
# round). The stored point is ``ll_to_earth``'s own value and the distance below is the body of
# ``earth_distance`` (``sec_to_gc``'s branch for any chord shorter than the Earth's diameter, i.e. any
# two non-antipodal points), same operations in the same order: the same doubles as ``nearby()``
# (checked on the benchmark's million sites; the byte tests compare the two paths).
_HERE = "(SELECT ll_to_earth($1, $2))"
_DISTANCE = f"2*earth()*asin(cube_distance(earth_point, {_HERE})/(2*earth())) * ($3 / earth())"
# Constants only; every value is a bound parameter: $1 lat, $2 lon, $3 the contract's earth radius,
# $4 the box's radius, $5 the row limit, then the filters' values, then (``_EXACT``) the distance.
_HITS = (
    f"SELECT id, content_hash, {_DISTANCE} AS distance{{row}} FROM {SCHEMA}.sites "  # noqa: S608
    f"WHERE earth_box({_HERE}, $4 / ($3 / earth())) @> earth_point{{filters}} "
)
# No "distance <= radius" test here: PostgreSQL would compute the distance twice per row (the test
# and the select list). The KNN walk returns rows by chord distance, of which the great-circle
# distance is a non-decreasing function, so the rows within the radius are a prefix of the walk:
# cutting the list there (``_hits_postgres``) gives exactly the rows the test would have let
# through, and the walk stops at the same row or earlier.
_KNN = _HITS + f"ORDER BY earth_point <-> {_HERE} LIMIT $5"
_EXACT = _HITS + f"AND {_DISTANCE} <= ${{last}} ORDER BY distance, id LIMIT $5"


def _hits_sql(template: str, filters: Filters, row_sql: str | None) -> tuple[str, tuple[Any, ...]]:
    clauses, extra = "", list[Any]()
    if filters.stores is not None:
        extra.append(list(filters.stores))
        clauses += f" AND store_category = ANY(${5 + len(extra)}::varchar[])"
    if filters.pickup_mask is not None:
        extra.append(filters.pickup_mask)
        clauses += f" AND (pickup_mask & ${5 + len(extra)}::integer) != 0"
    row = f", {row_sql}" if row_sql else ""
    return template.format(filters=clauses, row=row, last=6 + len(extra)), tuple(extra)


async def _hits_postgres(
    session: AsyncSession, lat: float, lon: float, radius_m: float, limit: int, filters: Filters, row_sql: str | None
) -> list[Hit]:
    connection = await session.connection()

    async def fetch(template: str, metres: float, *last: float) -> list[Hit]:
        sql, extra = _hits_sql(template, filters, row_sql)
        params = (float(lat), float(lon), EARTH_RADIUS_M, float(metres) * 1.000001, limit + 1, *extra, *last)
        return [tuple(row) for row in (await connection.exec_driver_sql(sql, params)).all()]

    rows = [row for row in await fetch(_KNN, radius_m) if row[2] <= radius_m]  # the prefix within the radius
    if len(rows) > limit and rows[limit][2] - rows[limit - 1][2] < TIE_M:  # see _nearby_postgres
        edge = rows[limit - 1][2] + TIE_M
        rows = await fetch(_EXACT, edge, edge)
        rows = rows[:limit]
    rows.sort(key=_by_distance_then_id)
    return rows[:limit]


def _by_distance_then_id(row: Hit) -> tuple[float, int]:
    return row[2], row[0]


def _earth_point(lat: ColumnElement[float] | InstrumentedAttribute[float], lon: Any) -> ColumnElement[Any]:
    return func.ll_to_earth(lat, lon)


async def _nearby_postgres(
    session: AsyncSession,
    columns: tuple[Any, ...],
    id_of: Callable[[Any], int],
    lat: float,
    lon: float,
    radius_m: float,
    limit: int,
    filters: Filters,
) -> list[tuple[Any, ...]]:
    """Rows of ``(*columns, metres)``; ``id_of(first column)`` is the site id (the tie-break)."""
    here = _earth_point(cast(literal(lat), Float), cast(literal(lon), Float))
    point = _earth_point(Site.latitude, Site.longitude)  # the indexed expression, verbatim
    to_contract = EARTH_RADIUS_M / func.earth()
    distance = (func.earth_distance(point, here) * to_contract).label("distance")

    def within(metres: float) -> list[ColumnElement[bool]]:
        # Tiny slack on the box only: the exact distance test decides membership.
        box = func.earth_box(here, cast(literal(metres * 1.000001), Float) / to_contract)
        return [box.op("@>")(point), distance <= metres, *filters.clauses()]

    # ORDER BY the KNN operator alone: adding ", id" makes PostgreSQL sort the whole box instead of
    # walking the index nearest-first (measured: 16 s instead of 4 ms for 60 km in Seoul on 1 M rows).
    # One extra row tells whether a tie crosses the page boundary.
    knn = select(*columns, distance).where(*within(radius_m)).order_by(point.op("<->")(here)).limit(limit + 1)
    rows = [(*row[:-1], float(row[-1])) for row in (await session.execute(knn)).all()]
    if len(rows) > limit and rows[limit][-1] - rows[limit - 1][-1] < TIE_M:
        # Sites exactly as far as the last one (same coordinates) exist beyond the page: the id
        # tie-break must choose among all of them. The box of that distance holds about one page.
        edge = rows[limit - 1][-1] + TIE_M
        exact = select(*columns, distance).where(*within(edge)).order_by(distance, Site.id).limit(limit)
        rows = [(*row[:-1], float(row[-1])) for row in (await session.execute(exact)).all()]
    return sorted(rows, key=lambda row: (row[-1], id_of(row[0])))[:limit]


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) containing every point within ``radius_m``."""
    angle = radius_m / EARTH_RADIUS_M
    dlat = math.degrees(angle)
    lat_lo, lat_hi = lat - dlat, lat + dlat
    if lat_lo <= -90 or lat_hi >= 90:
        return max(lat_lo, -90), min(lat_hi, 90), -180.0, 180.0
    # Widest longitude span is at the latitude furthest from the equator inside the box.
    dlon = math.degrees(math.asin(min(1.0, math.sin(angle) / math.cos(math.radians(lat)))))
    widest = max(abs(lat_lo), abs(lat_hi))
    dlon = max(dlon, math.degrees(angle / math.cos(math.radians(widest))))
    return lat_lo, lat_hi, lon - dlon, lon + dlon


async def _nearby_sqlite(
    session: AsyncSession, lat: float, lon: float, radius_m: float, limit: int, filters: Filters
) -> list[tuple[int, str, float]]:
    """(id, content_hash, metres) sorted by (distance, id)."""
    lat_lo, lat_hi, lon_lo, lon_hi = bounding_box(lat, lon, radius_m * 1.000001)
    box = sites_rtree.c
    # Overlap tests: the R*Tree stores 32-bit floats rounded outwards, so containment could miss a point.
    candidates = select(Site.id, Site.latitude, Site.longitude, Site.content_hash).join(sites_rtree, box.id == Site.id)
    candidates = candidates.where(
        and_(box.max_lat >= lat_lo, box.min_lat <= lat_hi, box.max_lon >= lon_lo, box.min_lon <= lon_hi),
        *filters.clauses(),
    )
    hits = []
    for site_id, site_lat, site_lon, digest in (await session.execute(candidates)).all():
        metres = haversine_m(lat, lon, site_lat, site_lon)
        if metres <= radius_m:
            hits.append((metres, site_id, digest))
    hits.sort()
    return [(site_id, digest, metres) for metres, site_id, digest in hits[:limit]]
