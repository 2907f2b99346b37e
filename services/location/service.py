"""Domain rules of the drop-off map: nearby search, detail, keyword search and suggestions.

No HTTP here: errors are ``AppError``s, inputs are plain values already validated by the router.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.clock import utcnow
from services.common.errors import BadRequest, NotFound
from services.common.metrics import LOCATION_QUERY, timed
from services.location.classify import (
    PICKUP_CATEGORIES,
    STORE_CATEGORIES,
    UnknownCategory,
    parse_filter,
    pickup_list,
    pickup_mask,
)
from services.location.entries import DEFAULT_CAPACITY, ENTRY_JSON_SQL, EntryCache, render
from services.location.hours import opening_state, seoul, today_column
from services.location.index import Filters, nearby, nearby_hits, text_match
from services.location.models import Site
from services.location.present import (
    display_address,
    display_name,
    distance_km,
    distance_text,
    format_phone,
    haversine_m,
)
from services.location.provider import Place, PlaceSearch
from services.location.schemas import LocationDetail, LocationEntry, Suggestion
from services.location.text import like_pattern, match_key, query_key

# docs/api.md, locations: nearby: Kakao level = clamp(16 − zoom, 1, 14) → (radius m, limit).
ZOOM_TABLE: dict[int, tuple[int, int]] = {
    1: (100, 200),
    2: (120, 200),
    3: (200, 200),
    4: (300, 200),
    5: (800, 200),
    6: (1200, 200),
    7: (3000, 160),
    8: (4500, 160),
    9: (8000, 120),
    10: (10000, 120),
    11: (20000, 80),
    12: (30000, 80),
    13: (60000, 50),
    14: (80000, 50),
}
DEFAULT_RADIUS_M, DEFAULT_LIMIT = 5000, 200
RADIUS_RANGE = (100, 80_000)
SEARCH_RADIUS_RANGE = (100, 20_000)
SEARCH_LIMIT, SUGGEST_LIMIT = 50, 5
DEDUPE_M = 50.0
MAX_ID = 2**63 - 1


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


def zoom_plan(zoom: int | None, radius: int | None) -> tuple[int, int]:
    """Effective (radius m, limit): explicit radius clamped, else the zoom's, else 5000 m; limit by zoom."""
    level_radius, limit = ZOOM_TABLE[clamp(16 - zoom, 1, 14)] if zoom is not None else (DEFAULT_RADIUS_M, DEFAULT_LIMIT)
    if radius is not None:
        return clamp(radius, *RADIUS_RANGE), limit
    return level_radius, limit


def _fields(site: Site) -> dict[str, Any]:
    return {
        "name": site.name,
        "lot_address": site.lot_address,
        "road_address": site.road_address,
        "introduction": site.introduction,
        "location_note": site.location_note,
    }


class LocationService:
    def __init__(
        self,
        provider: PlaceSearch | None = None,
        clock: Callable[[], datetime] = utcnow,
        entry_cache_size: int = DEFAULT_CAPACITY,
    ) -> None:
        self.provider = provider
        self.clock = clock
        self.entries = EntryCache(entry_cache_size)

    # -- building responses -------------------------------------------------------------------

    def _common(self, site: Site, now: datetime) -> dict[str, Any]:
        fields, metadata = _fields(site), site.source_metadata or {}
        state = opening_state(getattr(site, today_column(now)), now)
        return {
            "id": site.id,
            "name": display_name(site.source, fields, metadata),
            "source": site.source,
            "road_address": display_address(site.source, fields, metadata),
            "latitude": site.latitude,
            "longitude": site.longitude,
            "store_category": site.store_category,
            "pickup_categories": pickup_list(site.pickup_mask),
            "is_holiday": state.is_holiday,
            "is_open": state.is_open,
            "start_time": state.start_time,
            "end_time": state.end_time,
            "phone": format_phone(site.phone_basic, site.phone_main, site.phone_note, site.phone_individual),
            "place_url": None,
            "kakao_place_id": None,
        }

    def _entry(self, site: Site, metres: float, now: datetime) -> LocationEntry:
        return LocationEntry(
            **self._common(site, now), distance_km=distance_km(metres), distance_text=distance_text(metres)
        )

    @staticmethod
    def _place_entry(place: Place, entry_id: int, metres: float) -> LocationEntry:
        return LocationEntry(
            id=entry_id,
            name=place.name,
            source="kakao",
            road_address=place.address,
            latitude=place.latitude,
            longitude=place.longitude,
            distance_km=distance_km(metres),
            distance_text=distance_text(metres),
            store_category="general",
            pickup_categories=[],
            is_holiday=None,
            is_open=None,
            start_time=None,
            end_time=None,
            phone=format_phone(place.phone),
            place_url=place.place_url,
            kakao_place_id=place.id,
        )

    # -- endpoints ------------------------------------------------------------------------------

    async def centers(
        self,
        session: AsyncSession,
        *,
        lat: float,
        lon: float,
        zoom: int | None,
        radius: int | None,
        store_category: str | None,
        pickup_category: str | None,
    ) -> list[LocationEntry]:
        filters = self.filters(store_category, pickup_category)
        radius_m, limit = zoom_plan(zoom, radius)
        now = seoul(self.clock())
        with timed(LOCATION_QUERY("nearby")):
            hits = await nearby(session, lat, lon, radius_m, limit, filters)
        return [self._entry(site, metres, now) for site, metres in hits]

    async def centers_json(
        self,
        session: AsyncSession,
        *,
        lat: float,
        lon: float,
        zoom: int | None,
        radius: int | None,
        store_category: str | None,
        pickup_category: str | None,
    ) -> bytes:
        """``centers`` rendered as the response body, byte for byte what FastAPI makes of its list,
        at a fraction of the cost: the entries' fixed parts come from memory (``entries.py``), and
        the one index query brings the columns of the sites not held when the cache is cold. The
        HTTP route uses this; ``centers`` stays for callers that want the entries as objects."""
        filters = self.filters(store_category, pickup_category)
        radius_m, limit = zoom_plan(zoom, radius)
        now = seoul(self.clock())
        with timed(LOCATION_QUERY("nearby")):
            # Entry columns ride along when the cache is cold: one round trip (entries.EntryCache).
            row_sql = ENTRY_JSON_SQL if self.entries.wants_rows() else None
            hits = await nearby_hits(session, lat, lon, radius_m, limit, filters, row_sql=row_sql)
        return await render(session, self.entries, hits, now)

    @staticmethod
    def filters(store_category: str | None, pickup_category: str | None) -> Filters:
        try:
            stores = parse_filter(store_category, STORE_CATEGORIES)
        except UnknownCategory as exc:
            raise BadRequest(_unknown("store_category", exc), "INVALID_STORE_CATEGORY") from None
        try:
            pickups = parse_filter(pickup_category, PICKUP_CATEGORIES)
        except UnknownCategory as exc:
            raise BadRequest(_unknown("pickup_category", exc), "INVALID_PICKUP_CATEGORY") from None
        return Filters(stores=stores, pickup_mask=pickup_mask(pickups) if pickups else None)

    async def detail(self, session: AsyncSession, center_id: int) -> LocationDetail:
        # Negative ids are external places and never stored; out-of-range ids cannot exist either.
        site = await session.get(Site, center_id) if 0 < center_id <= MAX_ID else None
        if site is None:
            raise NotFound(f"location {center_id} not found", "LOCATION_NOT_FOUND")
        return LocationDetail(
            **self._common(site, seoul(self.clock())),
            lot_address=site.lot_address,
            collection_items=site.collection_items,
            introduction=site.introduction,
        )

    async def _matches(self, session: AsyncSession, key: str, limit: int) -> list[Site]:
        """Local matches ranked name prefix > name contains > address/keyword contains, then id."""
        tier = case(
            (Site.name_key.like(like_pattern(key)[1:], escape="\\"), 0),
            (Site.name_key.like(like_pattern(key), escape="\\"), 1),
            else_=2,
        )
        statement = select(Site).where(text_match(key)).order_by(tier, Site.id).limit(limit)
        with timed(LOCATION_QUERY("keyword")):
            return list((await session.scalars(statement)).all())

    async def search(self, session: AsyncSession, q: str, radius: int) -> list[LocationEntry]:
        key = query_key(q)
        if not key:
            return []
        radius_m = clamp(radius, *SEARCH_RADIUS_RANGE)
        now = seoul(self.clock())
        best = await self._matches(session, key, 1)
        places: list[Place] = []
        if best:
            anchor = best[0]
            origin = (anchor.latitude, anchor.longitude)
            with timed(LOCATION_QUERY("nearby")):
                hits = await nearby(session, *origin, radius_m, SEARCH_LIMIT, Filters(text_key=key))
            # The anchor leads even when another match shares its exact position with a smaller id.
            hits = [(anchor, 0.0)] + [(s, m) for s, m in hits if s.id != anchor.id]
            if self.provider is not None:
                places = await self.provider.search(q, lat=origin[0], lon=origin[1], radius_m=radius_m)
        elif self.provider is not None:
            places = await self.provider.search(q)
            if not places:
                return []
            origin = (places[0].latitude, places[0].longitude)
            with timed(LOCATION_QUERY("nearby")):
                hits = await nearby(session, *origin, radius_m, SEARCH_LIMIT)
        else:
            return []

        local = [(metres, 0, site.id, self._entry(site, metres, now)) for site, metres in hits]
        external = []
        for place in places:
            metres = haversine_m(*origin, place.latitude, place.longitude)
            near_ours = any(
                haversine_m(place.latitude, place.longitude, s.latitude, s.longitude) <= DEDUPE_M for s, _ in hits
            )
            if metres <= radius_m and not near_ours:
                external.append((metres, place))
        merged: list[tuple[float, int, int, LocationEntry | Place]] = [*local]
        merged += [(metres, 1, rank, place) for rank, (metres, place) in enumerate(external)]
        if best:  # keep the anchor first; the rest by distance
            merged = merged[:1] + sorted(merged[1:], key=lambda item: item[:3])
        else:
            merged.sort(key=lambda item: item[:3])

        result: list[LocationEntry] = []
        for metres, _, _, item in merged[:SEARCH_LIMIT]:
            if isinstance(item, Place):
                item = self._place_entry(item, -(sum(1 for e in result if e.id < 0) + 1), metres)
            result.append(item)
        return result

    async def suggest(self, session: AsyncSession, q: str) -> list[Suggestion]:
        key = query_key(q)
        if not key:
            return []
        chosen: list[tuple[str, float, float, Suggestion]] = []

        def add(name: str, suggestion: Suggestion) -> None:
            name_key = match_key(name)
            for other_key, lat, lon, _ in chosen:
                if (
                    other_key == name_key
                    and haversine_m(lat, lon, suggestion.latitude, suggestion.longitude) <= DEDUPE_M
                ):
                    return
            if len(chosen) < SUGGEST_LIMIT:
                chosen.append((name_key, suggestion.latitude, suggestion.longitude, suggestion))

        for site in await self._matches(session, key, SUGGEST_LIMIT * 4):
            fields, metadata = _fields(site), site.source_metadata or {}
            name = display_name(site.source, fields, metadata)
            add(
                name,
                Suggestion(
                    place_name=name,
                    address=display_address(site.source, fields, metadata),
                    latitude=site.latitude,
                    longitude=site.longitude,
                    place_url=None,
                ),
            )
        if len(chosen) < SUGGEST_LIMIT and self.provider is not None:
            for place in await self.provider.search(q):
                add(
                    place.name,
                    Suggestion(
                        place_name=place.name,
                        address=place.address,
                        latitude=place.latitude,
                        longitude=place.longitude,
                        place_url=place.place_url,
                    ),
                )
        return [suggestion for *_, suggestion in chosen]


def _unknown(parameter: str, exc: UnknownCategory) -> str:
    return f"unknown {parameter} {exc.value!r}; allowed values: all, {', '.join(exc.allowed)}"
