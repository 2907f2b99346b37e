"""GET /centers: validation, zoom table, clamping, ordering, filters before the limit, index = brute force."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from services.common.db import Database
from services.location.classify import PICKUP_CATEGORIES, STORE_CATEGORIES, pickup_mask
from services.location.models import Site
from services.location.present import EARTH_RADIUS_M, haversine_m
from services.location.service import ZOOM_TABLE, zoom_plan
from tests.location.conftest import load_public, load_sites, needs_public_data, site

CENTERS = "/api/v1/locations/centers"
ENTRY_FIELDS = [
    "id", "name", "source", "road_address", "latitude", "longitude", "distance_km", "distance_text",
    "store_category", "pickup_categories", "is_holiday", "is_open", "start_time", "end_time", "phone",
    "place_url", "kakao_place_id",
]  # fmt: skip
SEOUL_CITY_HALL = (37.5663, 126.9779)


def offset(lat: float, lon: float, north_m: float = 0.0, east_m: float = 0.0) -> tuple[float, float]:
    """A point ``north_m``/``east_m`` metres away (small offsets, spherical Earth)."""
    dlat = math.degrees(north_m / EARTH_RADIUS_M)
    dlon = math.degrees(east_m / (EARTH_RADIUS_M * math.cos(math.radians(lat))))
    return lat + dlat, lon + dlon


async def get(client: httpx.AsyncClient, auth: dict[str, str], **params: Any) -> httpx.Response:
    return await client.get(CENTERS, params=params, headers=auth)


# -- validation and errors ---------------------------------------------------------------------


async def test_requires_a_user(client: httpx.AsyncClient) -> None:
    response = await client.get(CENTERS, params={"lat": 37.5, "lon": 127.0})
    assert response.status_code == 401
    assert response.json()["code"] == "TOKEN_MISSING"
    bad = await client.get(CENTERS, params={"lat": 37.5, "lon": 127.0}, headers={"Authorization": "Bearer x.y.z"})
    assert bad.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"lon": 127.0},
        {"lat": 37.5},
        {"lat": 90.01, "lon": 127.0},
        {"lat": -90.01, "lon": 127.0},
        {"lat": 37.5, "lon": 180.5},
        {"lat": 37.5, "lon": -181},
        {"lat": "abc", "lon": 127.0},
        {"lat": "nan", "lon": 127.0},
        {"lat": 37.5, "lon": "inf"},
        {"lat": 37.5, "lng": 127.0},  # the client's parameter is lon, never lng
        {"lat": 37.5, "lon": 127.0, "zoom": "x"},
        {"lat": 37.5, "lon": 127.0, "radius": "1.5"},
        {"lat": 37.5, "lon": 127.0, "radius": "far"},
    ],
)
async def test_invalid_query_is_422_in_fastapi_shape(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, Any]
) -> None:
    response = await get(client, auth, **params)
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


@pytest.mark.parametrize(
    ("parameter", "value", "code", "allowed"),
    [
        ("store_category", "cafe_bakery,bakery", "INVALID_STORE_CATEGORY", STORE_CATEGORIES),
        ("store_category", "all,nope", "INVALID_STORE_CATEGORY", STORE_CATEGORIES),
        ("pickup_category", "can,metal", "INVALID_PICKUP_CATEGORY", PICKUP_CATEGORIES),
    ],
)
async def test_unknown_category_is_400_listing_allowed_values(
    client: httpx.AsyncClient, auth: dict[str, str], parameter: str, value: str, code: str, allowed: tuple[str, ...]
) -> None:
    response = await get(client, auth, lat=37.5, lon=127.0, **{parameter: value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == code
    assert set(body) == {"detail", "code"}
    for name in ("all", *allowed):
        assert name in body["detail"]


async def test_extreme_numbers_are_clamped_not_errors(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    for params in (
        {"radius": -5},
        {"radius": 10**30},
        {"zoom": -(10**30)},
        {"zoom": 10**30},
        {"store_category": " , ,"},
        {"pickup_category": "ALL"},
    ):
        response = await get(client, auth, lat=37.5, lon=127.0, **params)
        assert response.status_code == 200, params


# -- the zoom table and clamping ---------------------------------------------------------------

CONTRACT_TABLE = {  # zoom sent → (radius, limit), docs/api.md, locations: nearby
    15: (100, 200), 14: (120, 200), 13: (200, 200), 12: (300, 200), 11: (800, 200), 10: (1200, 200),
    9: (3000, 160), 8: (4500, 160), 7: (8000, 120), 6: (10000, 120), 5: (20000, 80), 4: (30000, 80),
    3: (60000, 50), 2: (80000, 50),
}  # fmt: skip


def test_zoom_table_matches_the_contract() -> None:
    for zoom, expected in CONTRACT_TABLE.items():
        assert zoom_plan(zoom, None) == expected
    assert zoom_plan(20, None) == (100, 200)
    assert zoom_plan(-3, None) == (80000, 50)
    assert zoom_plan(None, None) == (5000, 200)
    assert zoom_plan(None, 50) == (100, 200)
    assert zoom_plan(None, 500_000) == (80000, 200)
    assert zoom_plan(3, 1234) == (1234, 50)  # an explicit radius wins; the limit still follows the zoom
    assert len(ZOOM_TABLE) == 14


async def test_zoom_radius_and_limit_apply(db_sites: Database, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    # 60 sites on a line north of city hall: 1 km apart from 500 m → the nth at (n*1000 - 500) m.
    records = [site(n, *offset(*SEOUL_CITY_HALL, north_m=n * 1000 - 500), name=f"라인 {n}") for n in range(1, 61)]
    await load_sites(db_sites, *records)
    lat, lon = SEOUL_CITY_HALL
    names = lambda r: [e["name"] for e in r.json()]  # noqa: E731
    assert len((await get(client, auth, lat=lat, lon=lon, zoom=11)).json()) == 1  # 800 m
    assert len((await get(client, auth, lat=lat, lon=lon, zoom=9)).json()) == 3  # 3000 m
    assert len((await get(client, auth, lat=lat, lon=lon, zoom=3)).json()) == 50  # 60 km, limit 50
    assert len((await get(client, auth, lat=lat, lon=lon)).json()) == 5  # 5000 m default
    assert len((await get(client, auth, lat=lat, lon=lon, radius=5)).json()) == 0  # clamped up to 100 m
    everything = await get(client, auth, lat=lat, lon=lon, radius=10**9)
    assert len(everything.json()) == 60  # clamped to 80 km; default limit 200
    assert names(everything)[:3] == ["라인 1", "라인 2", "라인 3"]


@pytest.fixture
async def db_sites(location_db: Database) -> Database:
    return location_db


async def test_radius_boundary_and_entry_shape(
    db_sites: Database, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lat, lon = SEOUL_CITY_HALL
    await load_sites(
        db_sites,
        site(1, *offset(lat, lon, north_m=99.5), name="안쪽"),
        site(2, *offset(lat, lon, east_m=100.5), name="바깥"),
        site(3, *offset(lat, lon, north_m=-843.7), name="843m"),
        site(4, *offset(lat, lon, east_m=1249.0), name="1.2km"),
    )
    inside = (await get(client, auth, lat=lat, lon=lon, radius=100)).json()
    assert [e["name"] for e in inside] == ["안쪽"]
    entry = inside[0]
    assert list(entry) == ENTRY_FIELDS
    assert entry["distance_text"] == "99m"
    assert entry["distance_km"] == pytest.approx(0.0995, abs=6e-4)
    assert entry["source"] == "keco"
    assert entry["pickup_categories"] == ["general"]
    assert (entry["place_url"], entry["kakao_place_id"], entry["phone"]) == (None, None, None)
    texts = {e["name"]: e["distance_text"] for e in (await get(client, auth, lat=lat, lon=lon, radius=2000)).json()}
    assert texts == {"안쪽": "99m", "바깥": "100m", "843m": "843m", "1.2km": "1.2km"}


async def test_ties_sort_by_id_and_filters_apply_before_the_limit(
    db_sites: Database, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    lat, lon = SEOUL_CITY_HALL
    near = [site(n, *offset(lat, lon, north_m=10), name=f"일반 {n}") for n in range(1, 61)]  # 60 at one spot
    far = site(
        100, *offset(lat, lon, east_m=30_000), name="리필 가게 먼곳", collection_items="유리병\n의류"
    )  # refill_zero by name, glass + textile
    await load_sites(db_sites, *near, far)
    plain = (await get(client, auth, lat=lat, lon=lon, zoom=3)).json()
    assert len(plain) == 50
    assert [e["id"] for e in plain] == sorted(e["id"] for e in plain)  # equal distances → by id
    assert "리필 가게 먼곳" not in {e["name"] for e in plain}
    for params in ({"store_category": "REFILL_ZERO, cafe_bakery"}, {"pickup_category": "glass"}):
        filtered = (await get(client, auth, lat=lat, lon=lon, zoom=3, **params)).json()
        assert [e["name"] for e in filtered] == ["리필 가게 먼곳"], params
    both = (
        await get(client, auth, lat=lat, lon=lon, zoom=3, store_category="refill_zero", pickup_category="can")
    ).json()
    assert both == []
    general = (await get(client, auth, lat=lat, lon=lon, zoom=3, pickup_category="general,all")).json()
    assert len(general) == 50


async def test_extremes_of_korea(db_sites: Database, client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    dokdo, marado = (37.2426, 131.8669), (33.1176, 126.2676)
    await load_sites(
        db_sites,
        site(1, *dokdo, name="독도"),
        site(2, 37.4844, 130.9057, name="울릉도"),  # ≈ 87 km from Dokdo
        site(3, *marado, name="마라도"),
        site(4, 33.2460, 126.5600, name="서귀포"),  # ≈ 30 km from Marado
    )
    from_dokdo = (await get(client, auth, lat=dokdo[0], lon=dokdo[1], radius=80000)).json()
    assert [e["name"] for e in from_dokdo] == ["독도"]
    assert from_dokdo[0]["distance_text"] == "0m"
    from_ulleung = (await get(client, auth, lat=37.4844, lon=130.9057, radius=10**9)).json()
    assert [e["name"] for e in from_ulleung] == ["울릉도"]  # Dokdo ≈ 87.4 km is outside the 80 km ceiling
    from_marado = (await get(client, auth, lat=marado[0], lon=marado[1], zoom=3)).json()
    assert [e["name"] for e in from_marado] == ["마라도", "서귀포"]
    expected = haversine_m(*marado, 33.2460, 126.5600)
    assert from_marado[1]["distance_km"] == round(expected / 1000, 3)


# -- index results equal an exact brute force on the public datasets ----------------------------


def brute_force(
    rows: list[Any],
    lat: float,
    lon: float,
    radius: int,
    limit: int,
    stores: list[str] | None,
    pickups: list[str] | None,
) -> list[tuple[float, int]]:
    mask = pickup_mask(pickups) if pickups else None
    hits = []
    for row in rows:
        if stores is not None and row.store_category not in stores:
            continue
        if mask is not None and not row.pickup_mask & mask:
            continue
        metres = haversine_m(lat, lon, row.latitude, row.longitude)
        if metres <= radius:
            hits.append((metres, row.id))
    return sorted(hits)[:limit]


@needs_public_data
async def test_indexed_search_equals_brute_force_on_public_data(
    location_db: Database, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await load_public(location_db)
    async with location_db.session() as session:
        rows = (
            await session.execute(select(Site.id, Site.latitude, Site.longitude, Site.store_category, Site.pickup_mask))
        ).all()
    assert len(rows) == 395 + 351
    centres = [(r.latitude, r.longitude) for r in rows[::37]] + [
        SEOUL_CITY_HALL,
        (35.1796, 129.0756),
        (33.4996, 126.5312),
    ]
    cases = [(None, None, None), (3, None, None), (7, None, None), (11, None, None), (14, None, None)]
    cases += [(5, ["refill_zero", "upcycle_recycle"], None), (4, None, ["can"]), (None, ["general"], ["general"])]
    compared = 0
    for lat, lon in centres:
        for zoom, stores, pickups in cases:
            radius, limit = zoom_plan(zoom, None)
            params: dict[str, Any] = {"lat": lat, "lon": lon}
            if zoom is not None:
                params["zoom"] = zoom
            if stores:
                params["store_category"] = ",".join(stores)
            if pickups:
                params["pickup_category"] = ",".join(pickups)
            response = await get(client, auth, **params)
            assert response.status_code == 200
            got = [(e["distance_km"], e["id"]) for e in response.json()]
            expected = brute_force(rows, lat, lon, radius, limit, stores, pickups)
            assert [i for _, i in got] == [i for _, i in expected], (lat, lon, zoom, stores, pickups)
            assert [d for d, _ in got] == [round(m / 1000, 3) for m, _ in expected]
            compared += len(got)
    assert compared > 2000  # the comparison covered many results, not just empty pages
