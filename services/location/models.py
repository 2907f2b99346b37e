"""The location schema: one table of drop-off sites, KECO-shaped, plus the columns import derives.

Both sources (KECO drop-off points, zero-waste shops) are normalised into the 33 KECO fields
(docs/location.md, snake_case here; ``KECO_COLUMNS`` is the mapping) so every rule reads one shape. The
spatial index is not a model: it is a GiST index (PostgreSQL: over the expression, and over the
stored point ``earth_point``, a ``cube`` column kept by a trigger that only PostgreSQL has and no
query of the ORM reads) or an R*Tree virtual table kept by triggers (SQLite), all created by the
migrations; see ``index.py``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Float, Integer, MetaData, String, Table, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.clock import utcnow
from services.common.db import UtcDateTime, service_metadata

SCHEMA = "location"

# KECO open-API column → our column. Order is the KECO file's order (positnSn is ``source_pk``).
KECO_COLUMNS: dict[str, str] = {
    "positnNm": "name",
    "positnRgnNm": "region",
    "positnLotnoAddr": "lot_address",
    "positnRdnmAddr": "road_address",
    "positnPstnAddExpln": "location_note",
    "positnPstnLat": "latitude",
    "positnPstnLot": "longitude",
    "positnIntdcCn": "introduction",
    "positnCnvncFcltSrvcExpln": "amenities",
    "prkMthdExpln": "parking",
    "monSalsHrExplnCn": "hours_mon",
    "tuesSalsHrExplnCn": "hours_tue",
    "wedSalsHrExplnCn": "hours_wed",
    "thurSalsHrExplnCn": "hours_thu",
    "friSalsHrExplnCn": "hours_fri",
    "satSalsHrExplnCn": "hours_sat",
    "sunSalsHrExplnCn": "hours_sun",
    "lhldySalsHrExplnCn": "hours_holiday",
    "lhldyDyoffCn": "holiday_closure",
    "tmprLhldyCn": "temporary_holiday",
    "dyoffBgndeCn": "closure_start",
    "dyoffEnddtCn": "closure_end",
    "dyoffRsnExpln": "closure_reason",
    "bscTelnoCn": "phone_basic",
    "rprsTelnoCn": "phone_main",
    "telnoExpln": "phone_note",
    "indivTelnoCn": "phone_individual",
    "lnkgHmpgUrlAddr": "homepage_url",
    "indivRelSrchListCn": "keywords_site",
    "comRelSrwrdListCn": "keywords_common",
    "clctItemCn": "collection_items",
    "etcMttrCn": "misc_notes",
}
TEXT_COLUMNS = tuple(c for c in KECO_COLUMNS.values() if c not in ("latitude", "longitude"))
WEEKDAY_COLUMNS = ("hours_mon", "hours_tue", "hours_wed", "hours_thu", "hours_fri", "hours_sat", "hours_sun")


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class Site(Base):
    __tablename__ = "sites"
    __table_args__ = (UniqueConstraint("source", "source_pk", name="uq_sites_source_source_pk"),)

    # Our own surrogate id (docs/location.md recommendation): the two sources' id ranges may collide later.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    source_pk: Mapped[str] = mapped_column(String(64))

    name: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(Text)
    lot_address: Mapped[str | None] = mapped_column(Text)
    road_address: Mapped[str | None] = mapped_column(Text)
    location_note: Mapped[str | None] = mapped_column(Text)
    # Never null: a row without plausible coordinates is rejected at import (it could never be served).
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)
    introduction: Mapped[str | None] = mapped_column(Text)
    amenities: Mapped[str | None] = mapped_column(Text)
    parking: Mapped[str | None] = mapped_column(Text)
    hours_mon: Mapped[str | None] = mapped_column(Text)
    hours_tue: Mapped[str | None] = mapped_column(Text)
    hours_wed: Mapped[str | None] = mapped_column(Text)
    hours_thu: Mapped[str | None] = mapped_column(Text)
    hours_fri: Mapped[str | None] = mapped_column(Text)
    hours_sat: Mapped[str | None] = mapped_column(Text)
    hours_sun: Mapped[str | None] = mapped_column(Text)
    hours_holiday: Mapped[str | None] = mapped_column(Text)
    holiday_closure: Mapped[str | None] = mapped_column(Text)
    temporary_holiday: Mapped[str | None] = mapped_column(Text)
    closure_start: Mapped[str | None] = mapped_column(Text)
    closure_end: Mapped[str | None] = mapped_column(Text)
    closure_reason: Mapped[str | None] = mapped_column(Text)
    phone_basic: Mapped[str | None] = mapped_column(Text)
    phone_main: Mapped[str | None] = mapped_column(Text)
    phone_note: Mapped[str | None] = mapped_column(Text)
    phone_individual: Mapped[str | None] = mapped_column(Text)
    homepage_url: Mapped[str | None] = mapped_column(Text)
    keywords_site: Mapped[str | None] = mapped_column(Text)
    keywords_common: Mapped[str | None] = mapped_column(Text)
    collection_items: Mapped[str | None] = mapped_column(Text)
    misc_notes: Mapped[str | None] = mapped_column(Text)
    source_metadata: Mapped[dict[str, Any]] = mapped_column(JSON)

    # Derived at import so filters and keyword search run inside the SQL query.
    store_category: Mapped[str] = mapped_column(String(32))
    pickup_mask: Mapped[int] = mapped_column(Integer)  # bit i = PICKUP_CATEGORIES[i]
    name_key: Mapped[str] = mapped_column(Text)  # normalised display name (see text.py)
    search_key: Mapped[str] = mapped_column(Text)  # normalised addresses + keywords
    content_hash: Mapped[str] = mapped_column(String(64))  # makes re-imports "unchanged"
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# The SQLite R*Tree (created by the migration, SQLite only). Declared outside ``Base.metadata`` so
# no tool ever tries to create it as a plain table; the schema is translated away like every table.
rtree_metadata = MetaData(schema=SCHEMA)
sites_rtree = Table(
    "sites_rtree",
    rtree_metadata,
    Column("id", Integer, primary_key=True),
    Column("min_lat", Float),
    Column("max_lat", Float),
    Column("min_lon", Float),
    Column("max_lon", Float),
)
