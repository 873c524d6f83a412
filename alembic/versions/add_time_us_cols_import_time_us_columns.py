"""Add import_time_us (epoch microseconds) to packet, packet_seen and traceroute

Revision ID: add_time_us_cols
Revises: c88468b7ab0b
Create Date: 2025-11-03 14:10:00.000000

Databases created by the initial revision already have these columns; older MeshView
databases do not, so each table is only touched when its column is missing.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "add_time_us_cols"
down_revision: Union[str, Sequence[str], None] = "c88468b7ab0b"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Per table: the indexes that come with its import_time_us column, in creation order.
US_INDEXES = [
    (
        "packet",
        [
            ("idx_packet_import_time_us", [sa.text("import_time_us DESC")]),
            ("idx_packet_from_node_time_us", ["from_node_id", sa.text("import_time_us DESC")]),
        ],
    ),
    ("packet_seen", [("idx_packet_seen_import_time_us", ["import_time_us"])]),
    ("traceroute", [("idx_traceroute_import_time_us", ["import_time_us"])]),
]


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, indexes in US_INDEXES:
        have = [column["name"] for column in inspector.get_columns(table)]
        if "import_time_us" in have:
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("import_time_us", sa.BigInteger(), nullable=True))
        for index_name, columns in indexes:
            op.create_index(index_name, table, columns, unique=False)


def downgrade() -> None:
    # Undo in the opposite order: traceroute, packet_seen, then packet.
    for table, indexes in reversed(US_INDEXES):
        for index_name, _columns in reversed(indexes):
            op.drop_index(index_name, table_name=table)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("import_time_us")
