"""drop the catalog table: the catalog is read from the shared reference data

Every service reads the 13 characters from ``services.common.knowledge``; this table was a second
copy that only the character service read. Ownership and decisions refer to characters by code.
"""

from alembic import context, op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.drop_table("catalog", schema="character")


def downgrade() -> None:
    # The table as revision 0001 created it, with the rows revision 0002 wrote.
    context.script.get_revision("0001").module.create_catalog()
    context.script.get_revision("0002").module.upgrade()
