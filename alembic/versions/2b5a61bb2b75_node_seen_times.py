"""Add first_seen_us and last_seen_us to node

Revision ID: 2b5a61bb2b75
Revises: ac311b3782a1
Create Date: 2025-11-05 15:19:13.446724

Both are epoch microseconds and indexed, for "new nodes" and "active nodes" queries.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "2b5a61bb2b75"
down_revision: Union[str, Sequence[str], None] = "ac311b3782a1"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

SEEN_COLUMNS = ["first_seen_us", "last_seen_us"]


def upgrade() -> None:
    for name in SEEN_COLUMNS:
        op.add_column("node", sa.Column(name, sa.BigInteger(), nullable=True))
    for name in SEEN_COLUMNS:
        op.create_index("idx_node_" + name, "node", [name], unique=False)


def downgrade() -> None:
    # Indexes go first: SQLite refuses to drop an indexed column.
    for name in reversed(SEEN_COLUMNS):
        op.drop_index("idx_node_" + name, table_name="node")
    for name in reversed(SEEN_COLUMNS):
        op.drop_column("node", name)
