"""location schema: sites + spatial index (GiST over earthdistance on PostgreSQL, R*Tree on SQLite)"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

TEXT_COLUMNS = [
    "name",
    "region",
    "lot_address",
    "road_address",
    "location_note",
    "introduction",
    "amenities",
    "parking",
    "hours_mon",
    "hours_tue",
    "hours_wed",
    "hours_thu",
    "hours_fri",
    "hours_sat",
    "hours_sun",
    "hours_holiday",
    "holiday_closure",
    "temporary_holiday",
    "closure_start",
    "closure_end",
    "closure_reason",
    "phone_basic",
    "phone_main",
    "phone_note",
    "phone_individual",
    "homepage_url",
    "keywords_site",
    "keywords_common",
    "collection_items",
    "misc_notes",
]

# R*Tree rows mirror sites.latitude/longitude; triggers keep them in step whoever writes the table.
SQLITE_RTREE = [
    "CREATE VIRTUAL TABLE sites_rtree USING rtree(id, min_lat, max_lat, min_lon, max_lon)",
    "INSERT INTO sites_rtree SELECT id, latitude, latitude, longitude, longitude FROM sites",
    """CREATE TRIGGER sites_rtree_insert AFTER INSERT ON sites BEGIN
         INSERT INTO sites_rtree VALUES (new.id, new.latitude, new.latitude, new.longitude, new.longitude);
       END""",
    """CREATE TRIGGER sites_rtree_update AFTER UPDATE OF latitude, longitude ON sites BEGIN
         UPDATE sites_rtree SET min_lat = new.latitude, max_lat = new.latitude,
                                min_lon = new.longitude, max_lon = new.longitude WHERE id = new.id;
       END""",
    """CREATE TRIGGER sites_rtree_delete AFTER DELETE ON sites BEGIN
         DELETE FROM sites_rtree WHERE id = old.id;
       END""",
]


def upgrade() -> None:
    id_type = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "sites",
        sa.Column("id", id_type, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("source_pk", sa.String(length=64), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=True) for name in TEXT_COLUMNS[:5]),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        *(sa.Column(name, sa.Text(), nullable=True) for name in TEXT_COLUMNS[5:]),
        sa.Column("source_metadata", sa.JSON(), nullable=False),
        sa.Column("store_category", sa.String(length=32), nullable=False),
        sa.Column("pickup_mask", sa.Integer(), nullable=False),
        sa.Column("name_key", sa.Text(), nullable=False),
        sa.Column("search_key", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("source", "source_pk", name="uq_sites_source_source_pk"),
        schema="location",
    )
    if op.get_bind().dialect.name == "postgresql":
        # cube is a trusted extension; earthdistance is not, so a non-superuser migration role needs
        # it created beforehand by the platform (docs/location.md). IF NOT EXISTS makes that a no-op here.
        op.execute("CREATE EXTENSION IF NOT EXISTS cube")
        op.execute("CREATE EXTENSION IF NOT EXISTS earthdistance")
        op.execute("CREATE INDEX ix_sites_earth ON location.sites USING gist (ll_to_earth(latitude, longitude))")
    else:
        for statement in SQLITE_RTREE:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS sites_rtree")
    op.drop_table("sites", schema="location")
