"""Reading the two public source formats into one normalised site record (docs/location.md).

A real CSV parser (quoted multi-line fields), UTF-8 with or without a BOM, plain or gzipped. Each
data row becomes either a ``SiteRecord`` or a ``Rejection`` with the reason; nothing is written here.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

from pyproj import Transformer

from services.location.classify import pickup_categories, pickup_mask, store_category
from services.location.models import KECO_COLUMNS, TEXT_COLUMNS
from services.location.present import FALLBACK_NAME, display_name
from services.location.text import clean, match_key, pack

# Plausible coordinates for Korea (docs/location.md): Marado ≈ 33.1°N, Dokdo ≈ 131.9°E.
LAT_RANGE = (33.0, 39.0)
LON_RANGE = (124.0, 132.0)
ZEROWASTE_COLUMNS = [
    "folderId",
    "seq",
    "favoriteType",
    "color",
    "memo",
    "display1",
    "display2",
    "x",
    "y",
    "lon",
    "lat",
    "key",
    "createdAt",
    "updatedAt",
]
# The map app's planar x/y are 2.5 × EPSG:5181 (Korea 2000 / Central Belt) metres (docs/location.md).
ZEROWASTE_XY_SCALE = 2.5

Progress = Callable[[int, int], None]


class SourceFormat(StrEnum):
    KECO = "keco"
    ZEROWASTE = "zerowaste"


class SourceFileError(Exception):
    """The file as a whole cannot be read in the requested format (no row-level reason applies)."""


@dataclass(frozen=True)
class Rejection:
    row: int  # 1-based data row (the header is row 0)
    source_pk: str | None
    reason: str


@dataclass
class SiteRecord:
    source: str
    source_pk: str
    fields: dict[str, Any]  # TEXT_COLUMNS + latitude/longitude
    metadata: dict[str, Any]
    row_number: int = 0  # 1-based data row in the file, for messages only
    derived: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f, m = self.fields, self.metadata
        store = store_category(
            [
                *(f["introduction"], f["name"], f["location_note"], f["lot_address"], f["road_address"]),
                *(m.get("memo"), m.get("display1"), m.get("display2")),
            ]
        )
        pickups = pickup_categories([m.get("clctItemCn"), m.get("etcMttrCn")])
        self.derived = {
            "store_category": store,
            "pickup_mask": pickup_mask(pickups),
            "name_key": match_key(display_name(self.source, f, m)),
            "search_key": pack([f["road_address"], f["lot_address"], f["keywords_site"], f["keywords_common"]]),
        }
        payload = json.dumps([self.source, f, m, self.derived], ensure_ascii=False, sort_keys=True)
        self.derived["content_hash"] = hashlib.sha256(payload.encode()).hexdigest()

    @property
    def content_hash(self) -> str:
        return str(self.derived["content_hash"])

    def row(self) -> dict[str, Any]:
        """Column values for the ``sites`` table."""
        return {
            "source": self.source,
            "source_pk": self.source_pk,
            **self.fields,
            "source_metadata": self.metadata,
            **self.derived,
        }


ParsedRow = SiteRecord | Rejection


@cache
def _from_5181() -> Transformer:
    return Transformer.from_crs("EPSG:5181", "EPSG:4326", always_xy=True)


def project_zerowaste_xy(x: float, y: float) -> tuple[float, float]:
    """Map-app planar x/y → (lat, lon) in WGS84."""
    lon, lat = _from_5181().transform(x / ZEROWASTE_XY_SCALE, y / ZEROWASTE_XY_SCALE)
    return lat, lon


def _float(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


def _in_korea(lat: float, lon: float) -> bool:
    return LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1]


def _source_id(raw: str | None) -> str | None:
    text = clean(raw)
    return text if text and text.isdigit() else None


def _keco(row: dict[str, str], number: int) -> ParsedRow:
    pk = _source_id(row.get("positnSn"))
    if pk is None:
        return Rejection(number, clean(row.get("positnSn")), "missing or non-numeric positnSn")
    fields: dict[str, Any] = {column: clean(row.get(name)) for name, column in KECO_COLUMNS.items()}
    raw_lat, raw_lon = fields.pop("latitude"), fields.pop("longitude")
    if not raw_lat or not raw_lon:
        return Rejection(number, pk, "missing coordinates")
    lat, lon = _float(raw_lat), _float(raw_lon)
    if lat is None or lon is None:
        return Rejection(number, pk, f"unparseable coordinates (lat={raw_lat!r}, lon={raw_lon!r})")
    if not _in_korea(lat, lon):
        return Rejection(number, pk, f"coordinates outside Korea (lat={lat}, lon={lon})")
    fields.update(latitude=lat, longitude=lon)
    metadata = {name: row.get(name) or "" for name in ("positnSn", *KECO_COLUMNS)}
    if display_name("keco", fields, metadata) == FALLBACK_NAME:
        return Rejection(number, pk, "missing name (no name, address or introduction)")
    return SiteRecord("keco", pk, fields, metadata, number)


def _zerowaste(row: dict[str, str], number: int) -> ParsedRow:
    pk = _source_id(row.get("seq"))
    if pk is None:
        return Rejection(number, clean(row.get("seq")), "missing or non-numeric seq")
    memo, display1, display2 = clean(row.get("memo")), clean(row.get("display1")), clean(row.get("display2"))
    lat, lon = _float(row.get("lat")), _float(row.get("lon"))
    if lat is None or lon is None or not _in_korea(lat, lon):
        # 150 rows have no lat/lon; their planar x/y are always present.
        x, y = _float(row.get("x")), _float(row.get("y"))
        if x is None or y is None:
            return Rejection(number, pk, "missing coordinates (no lat/lon and no x/y)")
        lat, lon = project_zerowaste_xy(x, y)
        if not _in_korea(lat, lon):
            return Rejection(number, pk, f"coordinates outside Korea (x={x}, y={y} → lat={lat:.5f}, lon={lon:.5f})")
    address = display2 or display1
    fields: dict[str, Any] = dict.fromkeys(TEXT_COLUMNS)
    fields.update(
        name=display1 or display2 or memo or FALLBACK_NAME,
        lot_address=address,
        road_address=address,
        location_note=memo,
        introduction=memo,
        collection_items=memo,
        misc_notes=memo,
        amenities=clean(row.get("favoriteType")),
        latitude=lat,
        longitude=lon,
    )
    metadata = {name: row.get(name) or "" for name in ZEROWASTE_COLUMNS}
    return SiteRecord("zerowaste", pk, fields, metadata, number)


_PARSERS = {SourceFormat.KECO: _keco, SourceFormat.ZEROWASTE: _zerowaste}
_REQUIRED = {
    SourceFormat.KECO: ("positnSn", "positnNm", "positnPstnLat", "positnPstnLot"),
    SourceFormat.ZEROWASTE: ("seq", "display1", "x", "y"),
}


class _CountingReader(io.RawIOBase):
    """Counts bytes read from the file on disk, for a progress bar that works on gzip input too."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.done = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[: len(data)] = data
        self.done += len(data)
        return len(data)


def read_rows(path: Path, fmt: SourceFormat, progress: Progress | None = None) -> Iterator[ParsedRow]:
    """Every data row of ``path`` as a record or a rejection. Raises ``SourceFileError`` for the file."""
    total = path.stat().st_size
    with path.open("rb") as disk:
        counter = _CountingReader(disk)
        binary: IO[bytes] = io.BufferedReader(counter)
        if path.suffix == ".gz":
            binary = cast(IO[bytes], gzip.GzipFile(fileobj=binary))
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        try:
            reader = csv.DictReader(text)
            header = reader.fieldnames or []
            missing = [name for name in _REQUIRED[fmt] if name not in header]
            if missing:
                raise SourceFileError(f"not a {fmt.value} file: missing column(s) {', '.join(missing)}")
            parse = _PARSERS[fmt]
            for number, row in enumerate(reader, start=1):
                if None in row or any(value is None for value in row.values()):
                    yield Rejection(number, None, f"malformed row: {len(header)} columns expected")
                else:
                    yield parse(row, number)
                if progress is not None and number % 500 == 0:
                    progress(counter.done, total)
        except UnicodeDecodeError as exc:
            raise SourceFileError(f"not UTF-8 ({exc.reason} at byte {exc.start}); re-encode it first") from exc
        except (csv.Error, gzip.BadGzipFile, EOFError) as exc:
            raise SourceFileError(f"unreadable CSV: {exc}") from exc
        if progress is not None:
            progress(total, total)
