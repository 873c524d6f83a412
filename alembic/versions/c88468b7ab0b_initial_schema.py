"""Initial schema: node, packet, packet_seen and traceroute

Revision ID: c88468b7ab0b
Revises:
Create Date: 2025-10-26 20:56:50.285200

MeshView databases created before Alembic was introduced already hold these tables, so each
table (with its indexes) is only created when it is missing.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "c88468b7ab0b"
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# Index name, columns (an sa.text() element marks a descending key), per table, in the order
# they are created.  The downgrade walks the same lists backwards.
NODE_INDEXES = [
    ("idx_node_node_id", ["node_id"]),
]
PACKET_INDEXES = [
    ("idx_packet_from_node_id", ["from_node_id"]),
    ("idx_packet_to_node_id", ["to_node_id"]),
    ("idx_packet_import_time", [sa.text("import_time DESC")]),
    ("idx_packet_import_time_us", [sa.text("import_time_us DESC")]),
    ("idx_packet_from_node_time", ["from_node_id", sa.text("import_time DESC")]),
    ("idx_packet_from_node_time_us", ["from_node_id", sa.text("import_time_us DESC")]),
]
PACKET_SEEN_INDEXES = [
    ("idx_packet_seen_node_id", ["node_id"]),
    ("idx_packet_seen_packet_id", ["packet_id"]),
    ("idx_packet_seen_import_time_us", ["import_time_us"]),
]
TRACEROUTE_INDEXES = [
    ("idx_traceroute_import_time", ["import_time"]),
    ("idx_traceroute_import_time_us", ["import_time_us"]),
]


def _node_table() -> None:
    # One row per mesh node; `id` is the "!xxxxxxxx" form of the numeric node_id.
    op.create_table(
        "node",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=True),
        sa.Column("long_name", sa.String(), nullable=True),
        sa.Column("short_name", sa.String(), nullable=True),
        sa.Column("hw_model", sa.String(), nullable=True),
        sa.Column("firmware", sa.String(), nullable=True),
        sa.Column("role", sa.String(), nullable=True),
        sa.Column("last_lat", sa.BigInteger(), nullable=True),
        sa.Column("last_long", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("last_update", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("node_id"),
    )


def _packet_table() -> None:
    # One row per mesh packet id, whichever gateway reported it first.
    op.create_table(
        "packet",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("portnum", sa.Integer(), nullable=True),
        sa.Column("from_node_id", sa.BigInteger(), nullable=True),
        sa.Column("to_node_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.Column("import_time", sa.DateTime(), nullable=True),
        sa.Column("import_time_us", sa.BigInteger(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def _packet_seen_table() -> None:
    # Each reception of a packet by a gateway, keyed by (packet, gateway, rx_time).
    op.create_table(
        "packet_seen",
        sa.Column("packet_id", sa.BigInteger(), nullable=False),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        sa.Column("rx_time", sa.BigInteger(), nullable=False),
        sa.Column("hop_limit", sa.Integer(), nullable=True),
        sa.Column("hop_start", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(), nullable=True),
        sa.Column("rx_snr", sa.Float(), nullable=True),
        sa.Column("rx_rssi", sa.Integer(), nullable=True),
        sa.Column("topic", sa.String(), nullable=True),
        sa.Column("import_time", sa.DateTime(), nullable=True),
        sa.Column("import_time_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["packet_id"], ["packet.id"]),
        sa.PrimaryKeyConstraint("packet_id", "node_id", "rx_time"),
    )


def _traceroute_table() -> None:
    # Traceroute replies; `route` holds the RouteDiscovery payload.
    op.create_table(
        "traceroute",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("packet_id", sa.BigInteger(), nullable=True),
        sa.Column("gateway_node_id", sa.BigInteger(), nullable=True),
        sa.Column("done", sa.Boolean(), nullable=True),
        sa.Column("route", sa.LargeBinary(), nullable=True),
        sa.Column("import_time", sa.DateTime(), nullable=True),
        sa.Column("import_time_us", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["packet_id"], ["packet.id"]),
        sa.PrimaryKeyConstraint("id"),
    )


# Creation order matters: packet must exist before the tables that reference it.
TABLES = [
    ("node", _node_table, NODE_INDEXES),
    ("packet", _packet_table, PACKET_INDEXES),
    ("packet_seen", _packet_seen_table, PACKET_SEEN_INDEXES),
    ("traceroute", _traceroute_table, TRACEROUTE_INDEXES),
]


def upgrade() -> None:
    """Create whichever of the four tables the database does not have yet."""
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for table, create, indexes in TABLES:
        if table in present:
            continue
        create()
        for index_name, columns in indexes:
            op.create_index(index_name, table, columns, unique=False)


def downgrade() -> None:
    """Drop the four tables, dependants first.

    The indexes are dropped with IF EXISTS: when add_time_us_cols has been downgraded
    before this, the *_us indexes are already gone (MeshView's own downgrade stops there
    with "no such index").  IF EXISTS rather than an inspector check keeps this usable in
    offline (--sql) mode.
    """
    for table, _create, indexes in reversed(TABLES):
        for index_name, _columns in reversed(indexes):
            op.drop_index(index_name, table_name=table, if_exists=True)
        op.drop_table(table)
