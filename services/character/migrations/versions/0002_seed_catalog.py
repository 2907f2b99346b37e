"""seed the character catalog from services/common/knowledge/characters.json

Revision ID: 0002
Revises: 0001

The rows are replaced from the data file as it is when this runs (ownership refers to codes, not
rows). A later change to the catalog data ships as a new revision doing the same.
"""

import sqlalchemy as sa
from alembic import op

from services.common.knowledge import characters

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _catalog() -> sa.TableClause:
    # SQLite has no schemas; the migration runner's schema translation does not reach these DML
    # statements, so the schema is chosen here.
    schema = None if op.get_bind().dialect.name == "sqlite" else "character"
    return sa.table(
        "catalog",
        sa.column("code", sa.String),
        sa.column("id", sa.Uuid),
        sa.column("position", sa.Integer),
        sa.column("name", sa.String),
        sa.column("match", sa.String),
        sa.column("type", sa.String),
        sa.column("dialog", sa.String),
        sa.column("cdn_code", sa.String),
        schema=schema,
    )


def upgrade() -> None:
    catalog = _catalog()
    op.execute(catalog.delete())
    op.bulk_insert(
        catalog,
        [
            {
                "code": c.code,
                "id": c.id,
                "position": position,
                "name": c.name,
                "match": c.match,
                "type": c.type,
                "dialog": c.dialog,
                "cdn_code": c.cdn_code,
            }
            for position, c in enumerate(characters())
        ],
    )


def downgrade() -> None:
    op.execute(_catalog().delete())
