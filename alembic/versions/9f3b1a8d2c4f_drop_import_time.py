"""Drop the DateTime import_time columns (import_time_us replaces them)

Revision ID: 9f3b1a8d2c4f
Revises: 2b5a61bb2b75
Create Date: 2026-01-09 09:55:00.000000

Each drop only happens when the column or index is actually there.  On SQLite the batch
context rebuilds each table, which also re-creates its remaining indexes.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "9f3b1a8d2c4f"
down_revision: Union[str, Sequence[str], None] = "2b5a61bb2b75"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Per table, the indexes over import_time, in the order the upgrade drops them.
IMPORT_TIME_INDEXES = {
    "packet": ["idx_packet_import_time", "idx_packet_from_node_time"],
    "packet_seen": [],
    "traceroute": ["idx_traceroute_import_time"],
}


def _drop_import_time(inspector, table: str) -> None:
    """Drop `table`'s import_time indexes and column, skipping what is already gone."""
    indexes = IMPORT_TIME_INDEXES[table]
    if indexes:
        present_indexes = {ix["name"] for ix in inspector.get_indexes(table)}
    else:
        present_indexes = set()
    present_columns = {col["name"] for col in inspector.get_columns(table)}

    with op.batch_alter_table(table, schema=None) as batch_op:
        for index_name in indexes:
            if index_name in present_indexes:
                batch_op.drop_index(index_name)
        if "import_time" in present_columns:
            batch_op.drop_column("import_time")


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table in ("packet", "packet_seen", "traceroute"):
        _drop_import_time(inspector, table)


def downgrade() -> None:
    # The column comes back empty: the values were not kept.
    with op.batch_alter_table("traceroute", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_time", sa.DateTime(), nullable=True))
        batch_op.create_index("idx_traceroute_import_time", ["import_time"], unique=False)

    with op.batch_alter_table("packet_seen", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_time", sa.DateTime(), nullable=True))

    with op.batch_alter_table("packet", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_time", sa.DateTime(), nullable=True))
        batch_op.create_index(
            "idx_packet_import_time", [sa.text("import_time DESC")], unique=False
        )
        batch_op.create_index(
            "idx_packet_from_node_time",
            ["from_node_id", sa.text("import_time DESC")],
            unique=False,
        )
