"""Replace node.last_update (DateTime) by last_update_us (epoch microseconds), keeping values

Revision ID: b7c3c2e3a1f0
Revises: 9f3b1a8d2c4f
Create Date: 2026-01-12 10:12:00.000000

The conversion runs row by row in Python.  A naive timestamp is taken to be UTC.  The
microsecond arithmetic is float-based, like MeshView's, so both histories store the very
same integers.
"""
from datetime import datetime, timezone
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "b7c3c2e3a1f0"
down_revision: Union[str, Sequence[str], None] = "9f3b1a8d2c4f"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


# A lightweight view of the node table with just the columns this revision touches; the
# DateTime type makes SQLAlchemy hand back datetime objects for the stored text.
node_view = sa.table(
    "node",
    sa.column("id", sa.String()),
    sa.column("last_update", sa.DateTime()),
    sa.column("last_update_us", sa.BigInteger()),
)


def _as_utc(value):
    """Turn a stored last_update into an aware UTC datetime; None when it is not usable."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _epoch_us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _from_epoch_us(micros: int) -> datetime:
    """Naive UTC datetime, the way a DateTime column stores it."""
    return datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc).replace(tzinfo=None)


def _drop_node_column(conn, column: str, index_name: Union[str, None] = None) -> None:
    """Drop a node column (and its index first); SQLite goes through a batch table copy."""
    if conn.dialect.name == "sqlite":
        with op.batch_alter_table("node", schema=None) as batch_op:
            if index_name is not None:
                batch_op.drop_index(index_name)
            batch_op.drop_column(column)
    else:
        if index_name is not None:
            op.drop_index(index_name, table_name="node")
        op.drop_column("node", column)


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column("node", sa.Column("last_update_us", sa.BigInteger(), nullable=True))
    op.create_index("idx_node_last_update_us", "node", ["last_update_us"], unique=False)

    query = sa.select(node_view.c.id, node_view.c.last_update)
    for node_key, last_update in conn.execute(query).all():
        moment = _as_utc(last_update)
        if moment is None:
            continue
        conn.execute(
            sa.update(node_view)
            .where(node_view.c.id == node_key)
            .values(last_update_us=_epoch_us(moment))
        )

    _drop_node_column(conn, "last_update")


def downgrade() -> None:
    conn = op.get_bind()
    op.add_column("node", sa.Column("last_update", sa.DateTime(), nullable=True))

    query = sa.select(node_view.c.id, node_view.c.last_update_us)
    for node_key, micros in conn.execute(query).all():
        if micros is None:
            continue
        conn.execute(
            sa.update(node_view)
            .where(node_view.c.id == node_key)
            .values(last_update=_from_epoch_us(micros))
        )

    _drop_node_column(conn, "last_update_us", index_name="idx_node_last_update_us")
