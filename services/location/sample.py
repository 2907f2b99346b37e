"""The project's own sample sites (``data/``), loaded by ``eco2 dev`` into an empty table.

They are written by us and marked as sample data (names end in ``(샘플)``); the public datasets are
for tests and benchmarks only and are never loaded automatically (shared/data/README.md).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from services.common.db import Database
from services.common.logging import get_logger
from services.location.importer import import_file
from services.location.models import Site
from services.location.sources import SourceFormat

log = get_logger("eco2.location.sample")
DATA_DIR = Path(__file__).resolve().parent / "data"
SAMPLE_FILES = (
    (DATA_DIR / "sample_keco.csv", SourceFormat.KECO),
    (DATA_DIR / "sample_zerowaste.csv", SourceFormat.ZEROWASTE),
)


async def seed_if_empty(db: Database) -> None:
    async with db.session() as session:
        if await session.scalar(select(func.count()).select_from(Site)):
            return
        for path, fmt in SAMPLE_FILES:
            summary = await import_file(session, path, fmt)
            log.info("sample_sites_loaded", file=path.name, **summary.as_dict())
