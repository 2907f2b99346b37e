"""drop the catalog table: the catalog is read from the shared reference data

Revision ID: 0003
Revises: 0002

Every service reads the 13 characters from ``services.common.knowledge``; this table was a second
copy that only the character service read. Ownership and decisions refer to characters by code.
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("catalog", schema="character")


def downgrade() -> None:
    op.create_table(
        "catalog",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("match", sa.String(length=40), nullable=True),
        sa.Column("type", sa.String(length=200), nullable=False),
        sa.Column("dialog", sa.String(length=500), nullable=False),
        sa.Column("cdn_code", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_catalog")),
        sa.UniqueConstraint("id", name=op.f("uq_catalog_id")),
        sa.UniqueConstraint("match", name=op.f("uq_catalog_match")),
        sa.UniqueConstraint("name", name=op.f("uq_catalog_name")),
        schema="character",
    )
    # The rows as revision 0002 wrote them.
    context.script.get_revision("0002").module.upgrade()
