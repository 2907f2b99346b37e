"""A PostgreSQL database of one test alone, on the shared server (real mode)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg

from services.common.config import CommonSettings
from tests.conftest import PG_ADMIN_URL


@contextlib.asynccontextmanager
async def scratch_database(migrated: CommonSettings, prefix: str) -> AsyncIterator[str]:
    """Create ``<prefix>_<random>``, yield its SQLAlchemy URL, drop it afterwards (connections and all)."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    await admin.execute(f'CREATE DATABASE "{name}"')
    assert migrated.database_url is not None
    try:
        yield f"{migrated.database_url.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
