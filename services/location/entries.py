"""The nearby-search list rendered straight to JSON bytes, from a cache of the sites' fixed parts.

A ``/centers`` entry is made of three kinds of values (docs/api.md, locations):

- fixed for a given stored row — id, display name and address, coordinates, categories, phone;
- fixed for a given hours text within one minute — ``is_holiday``/``is_open``/times;
- per request — ``distance_km``/``distance_text``.

Building each entry from an ORM row and a pydantic model cost ≈ 0.12 ms (docs/location.md, benchmark),
i.e. 24 ms for a 200-row page. Here the fixed part of a site is rendered once into JSON fragments and
kept in memory under ``(id, content_hash)``. While the cache is warm a request asks the index only
for ``(id, content_hash, distance)`` and reads the rare site it does not hold by primary key; while
it is cold (recent searches met misses, ``EntryCache.wants_rows``) the index query also returns each
hit's entry columns as one JSON text (``ENTRY_JSON_SQL``), so the misses cost no second round trip.
The import writes a new ``content_hash`` whenever anything of a row changes (the hash covers every
field, the metadata and the derived columns), so a changed site is a cache miss in every process,
with no messaging: nothing stale can be served, whichever process ran the import.

The bytes are exactly what FastAPI renders for ``list[LocationEntry]`` (pydantic-core's JSON
serializer, the same one used here for every fixed fragment); ``tests/location/test_entries.py``
compares both renderings on the public datasets.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orjson import loads
from pydantic_core import to_json
from sqlalchemy import Row, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.location.classify import pickup_list
from services.location.hours import WEEKDAY_INDEX, opening_state
from services.location.index import Hit
from services.location.models import SCHEMA, Site
from services.location.present import display_address, display_name, distance_km_json, distance_text, format_phone

# What an entry reads of a site — not the 40-odd columns of the row (no keys, no notes, no hashes).
ENTRY_COLUMNS = (
    Site.id,
    Site.content_hash,
    Site.source,
    Site.name,
    Site.lot_address,
    Site.road_address,
    Site.introduction,
    Site.location_note,
    Site.source_metadata,
    Site.latitude,
    Site.longitude,
    Site.store_category,
    Site.pickup_mask,
    Site.phone_basic,
    Site.phone_main,
    Site.phone_note,
    Site.phone_individual,
    *(getattr(Site, column) for column in WEEKDAY_INDEX),
)
DEFAULT_CAPACITY = 50_000  # ≈ 0.7 KB each (measured by bench/location_centers.py) → ≈ 35 MB at most
# When to ask the index query for the entries' columns too (``EntryCache.wants_rows``): when the
# recent share of hits that were misses (an exponential average, weight of the newest search) is at
# least COLD_THRESHOLD. Measured (bench/location_centers.py --variants rows,ids, 1 M sites): with
# ≈ 50 % misses the columns in the index query win; with 1–6 % misses they cost more PostgreSQL
# time than the second primary-key query for the few misses saves.
COLD_WEIGHT = 0.2
COLD_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True)
class CachedSite:
    content_hash: str
    head: bytes  # '{"id":…,"longitude":…,"distance_km":'
    middle: bytes  # ',"store_category":…,"pickup_categories":[…],'
    tail: bytes  # '"phone":…,"place_url":null,"kakao_place_id":null}'
    hours: tuple[str | None, ...]  # Monday … Sunday, as stored


def _fragment(values: Mapping[str, Any]) -> bytes:
    """``"k":v,"k2":v2`` — an object's members without the braces, in the given order."""
    return to_json(dict(values))[1:-1]


def cached_site(row: Row[Any] | Sequence[Any]) -> CachedSite:
    values: tuple[Any, ...] = tuple(row)  # ENTRY_COLUMNS, in order
    (site_id, content_hash, source, name, lot, road, intro, note, metadata, lat, lon, store, mask,
     phone_basic, phone_main, phone_note, phone_individual, *hours) = values  # fmt: skip
    fields = {"name": name, "lot_address": lot, "road_address": road, "introduction": intro, "location_note": note}
    metadata = metadata or {}
    # The values pass through LocationEntry's types first (float coordinates, int id) as pydantic would.
    head = _fragment(
        {
            "id": int(site_id),
            "name": display_name(source, fields, metadata),
            "source": source,
            "road_address": display_address(source, fields, metadata),
            "latitude": float(lat),
            "longitude": float(lon),
        }
    )
    middle = _fragment({"store_category": store, "pickup_categories": pickup_list(mask)})
    tail = _fragment(
        {
            "phone": format_phone(phone_basic, phone_main, phone_note, phone_individual),
            "place_url": None,
            "kakao_place_id": None,
        }
    )
    return CachedSite(
        content_hash,
        b"{" + head + b',"distance_km":',
        b"," + middle + b",",
        tail + b"}",
        tuple(hours),
    )


class EntryCache:
    """Sites' fixed fragments by id, at most ``capacity`` of them (oldest insertion evicted first),
    plus today's opening-state fragments by hours text for the current minute."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self.sites: dict[int, CachedSite] = {}
        self._minute: tuple[int, int, int, int, int] | None = None
        self._hours: dict[str | None, bytes] = {}
        self.hits = self.misses = 0
        self._cold = 1.0  # share of misses: an empty cache misses everything

    def note(self, misses: int, hits: int) -> None:
        """Record one search: ``misses`` of its ``hits`` were not held (for ``wants_rows``)."""
        if hits:
            self._cold += (misses / hits - self._cold) * COLD_WEIGHT

    def wants_rows(self) -> bool:
        """Whether the next search should fetch every hit's entry columns with the index query.

        Cold (a good share of recent hits were misses): yes — the misses then cost no second round
        trip, which on a loaded machine is a second wait for a PostgreSQL backend to be scheduled.
        Warm: no — the hits carry only (id, hash, distance), and the few misses are read by a
        primary-key query."""
        return self.capacity <= 0 or self._cold >= COLD_THRESHOLD

    def store(self, site: CachedSite, site_id: int) -> None:
        if self.capacity <= 0:
            return
        self.sites.pop(site_id, None)  # a changed site moves to the young end
        while len(self.sites) >= self.capacity:
            del self.sites[next(iter(self.sites))]
        self.sites[site_id] = site

    def openings(self, now: datetime) -> dict[str | None, bytes]:
        """The fragments computed so far for ``now``'s minute, by hours text (emptied when it changes)."""
        minute = (now.year, now.month, now.day, now.hour, now.minute)
        if minute != self._minute:
            self._minute, self._hours = minute, {}
        return self._hours

    def opening(self, hours: str | None, now: datetime) -> bytes:
        """``"is_holiday":…,"is_open":…,"start_time":…,"end_time":…,`` for ``now`` (Asia/Seoul).

        The state depends on the text and on ``now`` to the minute (weekday, week of month, month,
        time of day), so fragments are kept for the current minute only."""
        fragment = self.openings(now).get(hours)
        if fragment is None:  # first time this minute
            state = opening_state(hours, now)
            fragment = (
                _fragment(
                    {
                        "is_holiday": state.is_holiday,
                        "is_open": state.is_open,
                        "start_time": state.start_time,
                        "end_time": state.end_time,
                    }
                )
                + b","
            )
            self._hours[hours] = fragment
        return fragment


# The entry's columns as ONE JSON text (PostgreSQL), in ENTRY_COLUMNS order, so a cache miss needs
# no per-column decoding in the driver and — above all — no decoding of the whole source-metadata
# JSON: of it, an entry only reads the keys ``display1``/``display2`` (present.display_name/address).
# Extracting a key from a ``json`` column parses the whole text (≈ 1 KB for a KECO row, which has no
# such key): a plain substring test first skips that for rows whose text cannot hold the key (the
# importer writes the metadata with json.dumps, keys spelled as is) — measured +33 % execution time
# for a 200-site page without it, +5 % with it. ``json_build_array`` writes numbers in PostgreSQL's
# shortest exact form, so the floats read back are the stored ones to the last bit (tests compare
# the bytes with the model path).
_DISPLAY_KEYS = (
    "CASE WHEN strpos(source_metadata::text, '\"display') > 0 THEN json_build_object("
    "'display1', source_metadata->'display1', 'display2', source_metadata->'display2') END"
)
ENTRY_JSON_SQL = (
    "json_build_array("
    + ", ".join(_DISPLAY_KEYS if column.key == "source_metadata" else column.key for column in ENTRY_COLUMNS)
    + ")::text"
)
_BY_IDS_POSTGRES = f"SELECT {ENTRY_JSON_SQL} FROM {SCHEMA}.sites WHERE id = ANY($1::bigint[])"  # noqa: S608
# Built once: constructing a 24-column select per request costs more CPU than running it.
_BY_IDS = select(*ENTRY_COLUMNS).where(Site.id.in_(bindparam("ids", expanding=True)))


async def _load(session: AsyncSession, ids: list[int]) -> dict[int, CachedSite]:
    if session.get_bind().dialect.name != "postgresql":
        return {row[0]: cached_site(row) for row in (await session.execute(_BY_IDS, {"ids": ids})).all()}
    # One array parameter: the statement text (and its prepared plan) is the same for any count.
    connection = await session.connection()
    rows = [loads(text) for (text,) in (await connection.exec_driver_sql(_BY_IDS_POSTGRES, (ids,))).all()]
    return {row[0]: cached_site(row) for row in rows}


async def render(session: AsyncSession, cache: EntryCache, hits: Sequence[Hit], now: datetime) -> bytes:
    """The JSON array of entries for ``hits`` = (id, content_hash, metres[, entry JSON]) in response
    order; ``now`` in Asia/Seoul. A miss whose hit carries the entry's JSON (``ENTRY_JSON_SQL``, asked
    for when ``cache.wants_rows()``) is built from it; the other misses are read in one primary-key
    query — a second round trip."""
    held = cache.sites.get
    sites: list[CachedSite | None] = []
    missing: list[int] = []
    misses = 0
    for hit in hits:
        site_id = hit[0]
        site = held(site_id)
        if site is None or site.content_hash != hit[1]:
            misses += 1
            if len(hit) > 3:
                site = cached_site(loads(hit[3]))
                cache.store(site, site_id)
            else:
                site = None
                missing.append(site_id)
        sites.append(site)
    cache.hits += len(hits) - misses
    cache.misses += misses
    cache.note(misses, len(hits))
    if missing:
        loaded = await _load(session, missing)
        for index, site_id in enumerate(hit[0] for hit in hits):
            if sites[index] is None and site_id in loaded:
                sites[index] = loaded[site_id]
                cache.store(loaded[site_id], site_id)
    weekday = now.weekday()
    opening = cache.opening
    held_opening = cache.openings(now).get  # this minute's fragments: one dict lookup per entry
    # One flat list and one join: no intermediate bytes object per entry.
    parts: list[bytes] = [b"["]
    append = parts.append
    for hit, site in zip(hits, sites, strict=True):
        if site is None:  # deleted between the two queries: as if the search had run a moment later
            continue
        metres = hit[2]
        hours = site.hours[weekday]
        append(site.head)
        append(f'{distance_km_json(metres)},"distance_text":"{distance_text(metres)}"'.encode())
        append(site.middle)
        append(held_opening(hours) or opening(hours, now))
        append(site.tail)
        append(b",")
    if len(parts) == 1:
        return b"[]"
    parts[-1] = b"]"
    return b"".join(parts)
