"""Import, projection, rejections, search and detail on the project's own sample files
(``services/location/data``), so every checkout covers what the public-data tests check on the full
datasets (those are skipped where the datasets are absent)."""

from __future__ import annotations

import csv
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from services.cli import app as eco2
from services.location.hours import OpeningState, opening_state
from services.location.index import haversine_m
from services.location.models import Site
from services.location.service import zoom_plan
from services.location.sources import SiteRecord, SourceFileError, SourceFormat, project_zerowaste_xy, read_rows
from tests.conftest import REAL
from tests.location.conftest import SAMPLE_KECO, SAMPLE_ZEROWASTE, bom_and_duplicate, load, reset, site_ids
from tests.location.test_centers import brute_force, get

KECO_SITES, ZEROWASTE_SITES = 20, 6
# Rows the importer must refuse, each with the reason it reports (written into a copy of the sample).
BROKEN_KECO = {
    "900901": ("", "", "missing coordinates"),
    "900902": ("12.5", "200.1", "coordinates outside Korea"),
    "900903": ("37.5x", "126.9", "unparseable coordinates"),
}


async def count(db: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Site)) or 0)


def keco_with_broken_rows(tmp_path: Path) -> Path:
    rows = list(csv.DictReader(SAMPLE_KECO.open(encoding="utf-8-sig", newline="")))
    template = rows[0]
    for pk, (lat, lon, _) in BROKEN_KECO.items():
        rows.append(template | {"positnSn": pk, "positnPstnLat": lat, "positnPstnLot": lon})
    path = tmp_path / "keco_with_broken_rows.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(template))
        writer.writeheader()
        writer.writerows(rows)
    return path


async def test_samples_import_and_broken_rows_are_rejected_with_reasons(location_db: Any, tmp_path: Path) -> None:
    await reset(location_db)
    summary = await load(location_db, keco_with_broken_rows(tmp_path), SourceFormat.KECO)
    assert summary.as_dict() == {"inserted": KECO_SITES, "updated": 0, "unchanged": 0, "rejected": len(BROKEN_KECO)}
    reasons = {r.source_pk: r.reason for r in summary.rejected}
    for pk, (_, _, reason) in BROKEN_KECO.items():
        assert reasons[pk].startswith(reason), (pk, reasons[pk])
    zerowaste = await load(location_db, SAMPLE_ZEROWASTE, SourceFormat.ZEROWASTE)
    assert zerowaste.as_dict() == {"inserted": ZEROWASTE_SITES, "updated": 0, "unchanged": 0, "rejected": 0}
    async with location_db.session() as session:
        placed = (await session.execute(select(Site.latitude, Site.longitude).where(Site.source_pk == "990006"))).one()
    assert (33 <= placed.latitude <= 39, 124 <= placed.longitude <= 132) == (True, True)  # only x/y in the file


async def test_reimport_is_unchanged_a_rename_is_one_update_and_dry_run_writes_nothing(
    location_db: Any, tmp_path: Path
) -> None:
    await reset(location_db)
    assert (await load(location_db, SAMPLE_KECO, SourceFormat.KECO, dry_run=True)).as_dict()["inserted"] == KECO_SITES
    assert await count(location_db) == 0
    await load(location_db, SAMPLE_KECO, SourceFormat.KECO)
    before = await site_ids(location_db)
    again = await load(location_db, SAMPLE_KECO, SourceFormat.KECO)
    assert again.as_dict() == {"inserted": 0, "updated": 0, "unchanged": KECO_SITES, "rejected": 0}
    edited = tmp_path / "renamed.csv"
    edited.write_text(
        SAMPLE_KECO.read_text(encoding="utf-8").replace("망원동 자원순환가게", "망원동 자원순환가게 2호점", 1),
        encoding="utf-8",
    )
    summary = await load(location_db, edited, SourceFormat.KECO)
    assert summary.as_dict() == {"inserted": 0, "updated": 1, "unchanged": KECO_SITES - 1, "rejected": 0}
    assert await site_ids(location_db) == before  # public ids never change


async def test_bom_gzip_and_duplicate_ids(location_db: Any, tmp_path: Path) -> None:
    bom, gz = bom_and_duplicate(SAMPLE_ZEROWASTE, tmp_path)
    await reset(location_db)
    assert (await load(location_db, bom, SourceFormat.ZEROWASTE)).as_dict()["inserted"] == ZEROWASTE_SITES
    summary = await load(location_db, gz, SourceFormat.ZEROWASTE)
    assert summary.as_dict() == {"inserted": 0, "updated": 0, "unchanged": ZEROWASTE_SITES, "rejected": 1}
    assert summary.rejected[0].reason == "duplicate id (first at row 1)"


def test_multiline_fields_wrong_format_and_encoding(tmp_path: Path) -> None:
    rows = [r for r in read_rows(SAMPLE_KECO, SourceFormat.KECO) if isinstance(r, SiteRecord)]
    assert len(rows) == KECO_SITES
    first = next(r for r in rows if r.source_pk == "900001")
    assert first.fields["collection_items"].split("\n")[:2] == ["투명페트병", "무색페트병"]
    with pytest.raises(SourceFileError, match="missing column"):
        list(read_rows(SAMPLE_ZEROWASTE, SourceFormat.KECO))
    cp949 = tmp_path / "cp949.csv"
    cp949.write_bytes(SAMPLE_ZEROWASTE.read_text(encoding="utf-8").encode("cp949", errors="replace"))
    with pytest.raises(SourceFileError, match="not UTF-8"):
        list(read_rows(cp949, SourceFormat.ZEROWASTE))


def test_projection_matches_written_latlon_within_5m() -> None:
    rows = [r for r in csv.DictReader(SAMPLE_ZEROWASTE.open(encoding="utf-8-sig", newline="")) if r["lat"]]
    assert len(rows) == ZEROWASTE_SITES - 1
    for r in rows:
        assert haversine_m(float(r["lat"]), float(r["lon"]), *project_zerowaste_xy(float(r["x"]), float(r["y"]))) < 5


def test_every_weekday_value_in_the_samples_has_the_contract_shape() -> None:
    values = set()
    for row in csv.DictReader(SAMPLE_KECO.open(encoding="utf-8-sig", newline="")):
        values |= {v for k, v in row.items() if k.endswith("SalsHrExplnCn") and not k.startswith("lhldy")}
    assert len(values) > 3
    noon = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
    for value in values:
        state = opening_state(value, noon)
        assert state == OpeningState(None, None, None, None) or isinstance(state.is_open, bool), value


async def test_indexed_search_equals_brute_force_on_the_samples(
    location_db: Any, client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    await reset(location_db)
    await load(location_db, SAMPLE_KECO, SourceFormat.KECO)
    await load(location_db, SAMPLE_ZEROWASTE, SourceFormat.ZEROWASTE)
    async with location_db.session() as session:
        rows = (
            await session.execute(select(Site.id, Site.latitude, Site.longitude, Site.store_category, Site.pickup_mask))
        ).all()
    assert len(rows) == KECO_SITES + ZEROWASTE_SITES
    compared = 0
    for lat, lon in [(r.latitude, r.longitude) for r in rows[::5]] + [(35.1796, 129.0756)]:
        for zoom, stores, pickups in [(None, None, None), (3, None, None), (7, None, None), (4, None, ["can"])]:
            radius, limit = zoom_plan(zoom, None)
            params: dict[str, Any] = {"lat": lat, "lon": lon} | ({"zoom": zoom} if zoom is not None else {})
            if pickups:
                params["pickup_category"] = ",".join(pickups)
            got = [(e["distance_km"], e["id"]) for e in (await get(client, auth, **params)).json()]
            expected = brute_force(rows, lat, lon, radius, limit, stores, pickups)
            assert [i for _, i in got] == [i for _, i in expected], (lat, lon, zoom, pickups)
            compared += len(got)
    assert compared > 20


@pytest.mark.skipif(REAL, reason="the CLI writes to its own embedded database here")
def test_cli_import_prints_summary_and_reasons(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ECO2_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "COLUMNS": "200"}
    args = ["location", "import", str(keco_with_broken_rows(tmp_path)), "--format", "keco"]
    first = runner.invoke(eco2, args, env=env)
    assert first.exit_code == 0, first.output
    for text in (str(KECO_SITES), "missing coordinates", "37.5x"):
        assert text in first.output
    second = runner.invoke(eco2, args, env=env)
    assert re.search(rf"│\s+0 │\s+0 │\s+{KECO_SITES} │\s+{len(BROKEN_KECO)} │", second.output), second.output
    wrong = runner.invoke(eco2, ["location", "import", str(SAMPLE_ZEROWASTE), "--format", "keco"], env=env)
    assert wrong.exit_code == 1
    assert "missing column" in wrong.output
