"""The import job on both public datasets: counts, rejections, classification, idempotence."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from services.cli import app as eco2
from services.common.db import Database
from services.location.classify import pickup_categories, pickup_list, store_category
from services.location.models import Site
from services.location.present import haversine_m
from services.location.sources import (
    Rejection,
    SiteRecord,
    SourceFileError,
    SourceFormat,
    project_zerowaste_xy,
    read_rows,
)
from tests.conftest import REAL
from tests.location.conftest import (
    KECO_FILE,
    SAMPLE_ZEROWASTE,
    ZEROWASTE_FILE,
    bom_and_duplicate,
    load,
    needs_public_data,
    reset,
)

KECO_REJECTED = {
    "47": "coordinates outside Korea",
    "99": "unparseable coordinates",
    "188": "coordinates outside Korea",
    "204": "missing coordinates",
    "205": "missing coordinates",
    "207": "missing coordinates",
    "208": "missing coordinates",
    "210": "missing coordinates",
    "313": "coordinates outside Korea",
    "326": "missing coordinates",
    "348": "missing coordinates",
    "353": "missing coordinates",
    "368": "unparseable coordinates",
    "379": "missing coordinates",
}


async def count(db: Database, source: str | None = None) -> int:
    async with db.session() as session:
        statement = select(func.count()).select_from(Site)
        if source:
            statement = statement.where(Site.source == source)
        return int(await session.scalar(statement) or 0)


@needs_public_data
async def test_keco_imports_395_and_rejects_14_with_reasons(location_db: Database) -> None:
    await reset(location_db)
    summary = await load(location_db, KECO_FILE, SourceFormat.KECO)
    assert summary.as_dict() == {"inserted": 395, "updated": 0, "unchanged": 0, "rejected": 14}
    reasons = {r.source_pk: r.reason for r in summary.rejected}
    assert set(reasons) == set(KECO_REJECTED)
    for pk, reason in KECO_REJECTED.items():
        assert reasons[pk].startswith(reason), (pk, reasons[pk])
    assert {r.row for r in summary.rejected} == {int(pk) for pk in KECO_REJECTED}  # positnSn = data row here
    assert await count(location_db, "keco") == 395


@needs_public_data
async def test_zerowaste_imports_all_351_including_150_projected(location_db: Database) -> None:
    await reset(location_db)
    summary = await load(location_db, ZEROWASTE_FILE, SourceFormat.ZEROWASTE)
    assert summary.as_dict() == {"inserted": 351, "updated": 0, "unchanged": 0, "rejected": 0}
    assert await count(location_db, "zerowaste") == 351
    raw = list(csv.DictReader(ZEROWASTE_FILE.open(encoding="utf-8-sig", newline="")))
    without_latlon = {r["seq"] for r in raw if not r["lat"] or not r["lon"]}
    assert len(without_latlon) == 150
    async with location_db.session() as session:
        rows = (await session.execute(select(Site.source_pk, Site.latitude, Site.longitude))).all()
    placed = {pk for pk, lat, lon in rows if 33 <= lat <= 39 and 124 <= lon <= 132}
    assert without_latlon <= placed


@needs_public_data
async def test_reimport_changes_nothing_and_edits_are_updates(location_db: Database, tmp_path: Path) -> None:
    await reset(location_db)
    await load(location_db, KECO_FILE, SourceFormat.KECO)
    await load(location_db, ZEROWASTE_FILE, SourceFormat.ZEROWASTE)
    async with location_db.session() as session:
        before = (await session.execute(select(Site.id, Site.content_hash, Site.updated_at).order_by(Site.id))).all()

    again = await load(location_db, KECO_FILE, SourceFormat.KECO)
    assert again.as_dict() == {"inserted": 0, "updated": 0, "unchanged": 395, "rejected": 14}
    again = await load(location_db, ZEROWASTE_FILE, SourceFormat.ZEROWASTE)
    assert again.as_dict() == {"inserted": 0, "updated": 0, "unchanged": 351, "rejected": 0}
    async with location_db.session() as session:
        after = (await session.execute(select(Site.id, Site.content_hash, Site.updated_at).order_by(Site.id))).all()
    assert after == before

    # One renamed site → exactly one update; the public id stays the same.
    text = KECO_FILE.read_text(encoding="utf-8")
    edited = tmp_path / "keco_edited.csv"
    edited.write_text(text.replace("고양동 종합복지회관", "고양동 종합복지회관 별관", 1), encoding="utf-8")
    summary = await load(location_db, edited, SourceFormat.KECO)
    assert summary.as_dict() == {"inserted": 0, "updated": 1, "unchanged": 394, "rejected": 14}
    async with location_db.session() as session:
        renamed = (await session.execute(select(Site.id, Site.name).where(Site.source_pk == "1"))).one()
    assert renamed.name == "고양동 종합복지회관 별관"
    assert renamed.id == next(
        row.id for row, old in zip(after, before, strict=True) if old.id == row.id and row.id == renamed.id
    )


@needs_public_data
async def test_dry_run_reports_without_writing(location_db: Database) -> None:
    await reset(location_db)
    summary = await load(location_db, KECO_FILE, SourceFormat.KECO, dry_run=True)
    assert summary.as_dict() == {"inserted": 395, "updated": 0, "unchanged": 0, "rejected": 14}
    assert await count(location_db) == 0


@needs_public_data
async def test_bom_gzip_and_duplicate_ids(location_db: Database, tmp_path: Path) -> None:
    bom, gz = bom_and_duplicate(ZEROWASTE_FILE, tmp_path)

    await reset(location_db)
    assert (await load(location_db, bom, SourceFormat.ZEROWASTE)).as_dict()["inserted"] == 351
    summary = await load(location_db, gz, SourceFormat.ZEROWASTE)
    assert summary.as_dict() == {"inserted": 0, "updated": 0, "unchanged": 351, "rejected": 1}
    assert summary.rejected[0].row == 352
    assert summary.rejected[0].reason == "duplicate id (first at row 1)"


@needs_public_data
def test_multiline_fields_are_one_record() -> None:
    rows = [r for r in read_rows(KECO_FILE, SourceFormat.KECO) if isinstance(r, SiteRecord)]
    first = next(r for r in rows if r.source_pk == "1")
    assert first.fields["collection_items"].split("\n")[:2] == ["투명페트병", "유색페트병"]
    assert first.fields["introduction"].count("\n") >= 2
    assert len(list(read_rows(KECO_FILE, SourceFormat.KECO))) == 409


@needs_public_data
def test_wrong_format_and_encoding_are_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceFileError, match="missing column"):
        list(read_rows(ZEROWASTE_FILE, SourceFormat.KECO))
    cp949 = tmp_path / "cp949.csv"
    cp949.write_bytes(ZEROWASTE_FILE.read_text(encoding="utf-8").encode("cp949", errors="replace"))
    with pytest.raises(SourceFileError, match="not UTF-8"):
        list(read_rows(cp949, SourceFormat.ZEROWASTE))


def test_short_row_and_bad_ids_are_rejected(tmp_path: Path) -> None:
    header = SAMPLE_ZEROWASTE.read_text(encoding="utf-8").splitlines()[0]
    path = tmp_path / "bad.csv"
    path.write_text(
        header
        + "\n4049789,12,PLACE\n4049789,abc,PLACE,2,,가게,,1,1,,,k,,\n4049789,77,PLACE,2,,먼곳,,9000000,9000000,,,k,,\n",
        encoding="utf-8",
    )
    rows = list(read_rows(path, SourceFormat.ZEROWASTE))
    assert all(isinstance(r, Rejection) for r in rows)
    reasons = [r.reason for r in rows if isinstance(r, Rejection)]
    assert reasons[0].startswith("malformed row")
    assert reasons[1] == "missing or non-numeric seq"
    assert reasons[2].startswith("coordinates outside Korea")


@needs_public_data
def test_projection_matches_published_latlon_within_5m() -> None:
    rows = list(csv.DictReader(ZEROWASTE_FILE.open(encoding="utf-8-sig", newline="")))
    both = [r for r in rows if r["lat"] and r["lon"]]
    assert len(both) == 201
    worst = max(
        haversine_m(float(r["lat"]), float(r["lon"]), *project_zerowaste_xy(float(r["x"]), float(r["y"]))) for r in both
    )
    assert worst < 5.0


def _raw_categories(path: Path, fmt: SourceFormat) -> tuple[Counter[str], Counter[str]]:
    """DOMAIN's reference distributions are over every row, the rejected ones included."""
    stores: Counter[str] = Counter()
    pickups: Counter[str] = Counter()
    for row in csv.DictReader(path.open(encoding="utf-8-sig", newline="")):
        if fmt is SourceFormat.KECO:
            texts = [
                row[k] for k in ("positnIntdcCn", "positnNm", "positnPstnAddExpln", "positnLotnoAddr", "positnRdnmAddr")
            ]
            items = [row["clctItemCn"], row["etcMttrCn"]]
        else:
            name = row["display1"] or row["display2"] or row["memo"] or "Zero Waste Spot"
            address = row["display2"] or row["display1"]
            texts = [row["memo"], name, row["memo"], address, address, row["memo"], row["display1"], row["display2"]]
            items = []
        stores[store_category([t.strip() for t in texts])] += 1
        pickups.update(pickup_categories([t.strip() for t in items]))
    return stores, pickups


@needs_public_data
def test_reference_category_distributions() -> None:
    stores, pickups = _raw_categories(KECO_FILE, SourceFormat.KECO)
    assert stores == {"upcycle_recycle": 193, "book_workshop": 154, "public_dropbox": 41, "general": 14,
                      "market_mart": 4, "cafe_bakery": 3}  # fmt: skip
    assert {k: pickups[k] for k in ("can", "plastic", "general", "clear_pet", "paper", "colored_pet", "textile")} == {
        "can": 256, "plastic": 151, "general": 143, "clear_pet": 114, "paper": 110, "colored_pet": 109, "textile": 28,
    }  # fmt: skip
    stores, pickups = _raw_categories(ZEROWASTE_FILE, SourceFormat.ZEROWASTE)
    assert stores == {"refill_zero": 149, "general": 148, "book_workshop": 16, "cafe_bakery": 13,
                      "upcycle_recycle": 13, "market_mart": 7, "lodging": 3, "vegan_dining": 1, "public_dropbox": 1}  # fmt: skip
    assert pickups == {"general": 351}


@needs_public_data
def test_categories_on_known_rows() -> None:
    keco = {r.source_pk: r for r in read_rows(KECO_FILE, SourceFormat.KECO) if isinstance(r, SiteRecord)}
    first = keco["1"]  # 고양동 종합복지회관: "재활용" in its introduction; PET, PE, box, cans in its items
    assert first.derived["store_category"] == "upcycle_recycle"
    assert pickup_list(first.derived["pickup_mask"]) == ["colored_pet", "can", "paper", "plastic"]
    assert not any(k in first.fields["collection_items"] for k in ("무색", "clear"))  # 투명페트병 is not clear_pet


def test_category_rules_on_names_and_items() -> None:
    assert store_category(["", "리필스테이션 게스트하우스"]) == "refill_zero"
    assert store_category(["망원 스테이션 게스트하우스"]) == "general"  # 스테이션 disables the lodging rule
    assert store_category(["동네 수거함"]) == "upcycle_recycle"  # 수거 wins before the drop-box rule
    assert store_category(["무인 회수기"]) == "public_dropbox"
    assert pickup_categories(["PET only", ""]) == ["clear_pet", "plastic"]
    assert pickup_categories(["", None]) == ["general"]


@needs_public_data
@pytest.mark.skipif(REAL, reason="the CLI writes to its own embedded database here")
def test_cli_import_prints_summary_and_reasons(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"ECO2_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "COLUMNS": "200"}
    args = ["location", "import", str(KECO_FILE), "--format", "keco"]
    first = runner.invoke(eco2, args, env=env)
    assert first.exit_code == 0, first.output
    for text in ("395", "missing coordinates", "127.7.23106"):
        assert text in first.output
    second = runner.invoke(eco2, args, env=env)
    assert second.exit_code == 0
    assert re.search(r"│\s+0 │\s+0 │\s+395 │\s+14 │", second.output), second.output
    dry = runner.invoke(
        eco2, ["location", "import", str(ZEROWASTE_FILE), "--format", "zerowaste", "--dry-run"], env=env
    )
    assert "dry run" in dry.output
    assert "351" in dry.output
    wrong = runner.invoke(eco2, ["location", "import", str(ZEROWASTE_FILE), "--format", "keco"], env=env)
    assert wrong.exit_code == 1
    assert "missing column" in wrong.output


@pytest.mark.skipif(REAL, reason="the CLI writes to its own embedded database here")
def test_cli_cluster_is_a_no_op_on_the_embedded_database(tmp_path: Path) -> None:
    env = {"ECO2_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "COLUMNS": "200"}
    result = CliRunner().invoke(eco2, ["location", "cluster"], env=env)
    assert result.exit_code == 0, result.output
    assert "nothing to do" in result.output
