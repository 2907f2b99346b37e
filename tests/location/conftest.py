from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.location.app import create_app
from services.location.config import LocationSettings
from services.location.importer import ImportSummary, import_file, import_rows
from services.location.models import SCHEMA, Site
from services.location.sample import SAMPLE_FILES
from services.location.sources import SiteRecord, SourceFormat
from tests.conftest import SHARED_DIR
from tests.support.clients import app_client
from tests.support.tokens import auth_headers


def _public_data() -> Path:
    """``ECO2_PUBLIC_DATA_DIR`` if set; else a ``shared/data/location`` folder beside the checkout (a
    git worktree may sit one level deeper, so look upwards)."""
    if os.environ.get("ECO2_PUBLIC_DATA_DIR"):
        return Path(os.environ["ECO2_PUBLIC_DATA_DIR"])
    candidates = [SHARED_DIR, *(parent / "shared" for parent in Path(__file__).resolve().parents)]
    return next((c / "data" / "location" for c in candidates if (c / "data" / "location").is_dir()), SHARED_DIR)


DATA = _public_data()
KECO_FILE = DATA / "keco_recycle_compensation_sites.csv"
ZEROWASTE_FILE = DATA / "zerowaste_map.csv"
SAMPLE_KECO, SAMPLE_ZEROWASTE = (path for path, _ in SAMPLE_FILES)
# The full public datasets are not part of the repository: tests that check figures of those files
# run where they are found next to the checkout and are skipped elsewhere. The same behaviours run
# on the project's own sample files in every checkout (test_sample_data.py).
needs_public_data = pytest.mark.skipif(
    not (KECO_FILE.is_file() and ZEROWASTE_FILE.is_file()),
    reason="needs the full public location datasets (ECO2_PUBLIC_DATA_DIR), which are not shipped with the "
    "repository; tests/location/test_sample_data.py covers the same behaviour on the shipped samples",
)


@pytest.fixture(scope="session")
async def location_db(migrated: CommonSettings) -> AsyncIterator[Database]:
    db = Database(database_url_for(SCHEMA, migrated.database_url, migrated.data_dir), SCHEMA)
    yield db
    await db.dispose()


async def reset(db: Database) -> None:
    async with db.session() as session:
        await session.execute(delete(Site))


def bom_and_duplicate(source: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``source`` with a UTF-8 BOM, and a gzipped copy whose first data row is repeated at the end."""
    raw = source.read_bytes()
    bom = tmp_path / f"bom_{source.name}"
    bom.write_bytes(b"\xef\xbb\xbf" + raw)
    lines = raw.decode().splitlines(keepends=True)
    gz = tmp_path / f"dup_{source.name}.gz"
    gz.write_bytes(gzip.compress("".join([*lines, lines[1]]).encode()))
    return bom, gz


async def load(db: Database, path: Path, fmt: SourceFormat, **kwargs: Any) -> ImportSummary:
    async with db.session() as session:
        return await import_file(session, path, fmt, **kwargs)


async def load_public(db: Database) -> None:
    await reset(db)
    await load(db, KECO_FILE, SourceFormat.KECO)
    await load(db, ZEROWASTE_FILE, SourceFormat.ZEROWASTE)


def site(pk: int, lat: float, lon: float, name: str = "테스트 거점", **fields: Any) -> SiteRecord:
    """A synthetic KECO site; ``fields`` override the normalised columns (hours_mon, collection_items…)."""
    from services.location.models import KECO_COLUMNS, TEXT_COLUMNS

    values: dict[str, Any] = dict.fromkeys(TEXT_COLUMNS)
    values.update({"name": name, "road_address": f"테스트로 {pk}", "latitude": lat, "longitude": lon, **fields})
    metadata = {keco: values.get(column) or "" for keco, column in KECO_COLUMNS.items() if column in values}
    metadata["clctItemCn"] = values.get("collection_items") or ""
    return SiteRecord("keco", str(pk), values, metadata, pk)


async def load_sites(db: Database, *records: SiteRecord) -> None:
    await reset(db)
    async with db.session() as session:
        await import_rows(session, records)


async def site_ids(db: Database) -> dict[str, int]:
    """source_pk → our id."""
    from sqlalchemy import select

    async with db.session() as session:
        return {str(pk): int(i) for pk, i in (await session.execute(select(Site.source_pk, Site.id))).all()}


@pytest.fixture
def auth(migrated: CommonSettings) -> dict[str, str]:
    return auth_headers(migrated)


@pytest.fixture
def client_factory(migrated: CommonSettings) -> Callable[..., Any]:
    def build(**settings: Any) -> Any:
        return app_client(create_app(common=migrated, settings=LocationSettings(environment="test", **settings)))

    return build


@pytest.fixture
async def client(client_factory: Callable[..., Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with client_factory() as c:
        yield c
