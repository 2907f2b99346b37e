"""Models and migrations cannot drift: after ``upgrade head`` every service's database is exactly what
its models declare (Alembic's ``compare_metadata``), in both modes (SQLite, PostgreSQL)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection

from services.common.config import CommonSettings
from services.common.db import Database, database_url_for
from services.registry import SERVICES

# Objects a migration creates on purpose that no model can declare: the SQLite R*Tree virtual table
# of the location index and the shadow tables SQLite keeps for it, the PostgreSQL GiST index over an
# earthdistance expression, and the stored earth point with its GiST index (PostgreSQL only, a type
# of the cube extension, filled by a trigger; docs/location.md).
MIGRATION_ONLY = {
    "location": {
        "sites_rtree",
        "sites_rtree_node",
        "sites_rtree_parent",
        "sites_rtree_rowid",
        "ix_sites_earth",
        "earth_point",
        "ix_sites_earth_point",
    }
}


def metadata_of(name: str) -> MetaData:
    metadata: MetaData = importlib.import_module(f"services.{name}.models").Base.metadata
    return metadata


def without_schema(metadata: MetaData) -> MetaData:
    """SQLite has no schemas: the models' tables as the embedded database holds them."""
    copy = MetaData(naming_convention=dict(metadata.naming_convention))
    for table in metadata.tables.values():
        moved = table.to_metadata(copy, schema=None)
        # Index names were derived with the schema in the column label (``ix_character_…``): keep them.
        names = {tuple(i.columns.keys()): i.name for i in table.indexes}
        for index in moved.indexes:
            index.name = names[tuple(index.columns.keys())]
    return copy


def differences(connection: Connection, name: str, metadata: MetaData, is_sqlite: bool) -> list[Any]:
    ignored = MIGRATION_ONLY.get(name, set())

    def include_name(object_name: str | None, kind: str, parent: Any) -> bool:
        if kind == "schema":
            return object_name in (None, name)  # the default schema (SQLite) or the service's
        return object_name not in ignored and object_name != "alembic_version"

    options: dict[str, Any] = {"compare_type": True, "include_name": include_name}
    if not is_sqlite:
        options |= {"include_schemas": True, "version_table_schema": name}
    context = MigrationContext.configure(connection, opts=options)
    return list(compare_metadata(context, without_schema(metadata) if is_sqlite else metadata))


@pytest.mark.parametrize("name", [n for n, e in SERVICES.items() if e.has_migrations])
# Reflection meets the cube column before include_name leaves it out (MIGRATION_ONLY).
@pytest.mark.filterwarnings("ignore:Did not recognize type 'cube' of column 'earth_point'")
async def test_models_match_the_migrated_database(name: str, migrated: CommonSettings) -> None:
    db = Database(database_url_for(name, migrated.database_url, migrated.data_dir), name)
    try:
        async with db.engine.connect() as connection:
            found = await connection.run_sync(differences, name, metadata_of(name), db.is_sqlite)
    finally:
        await db.dispose()
    assert found == [], f"{name}: models and migrations differ (write a revision): {found}"
