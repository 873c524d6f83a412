"""Add node_public_key: the public keys each node has announced

Revision ID: a0c9c13e118f
Revises: d4d7b0c2e1a4
Create Date: 2026-02-06 00:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "a0c9c13e118f"
down_revision: Union[str, Sequence[str], None] = "d4d7b0c2e1a4"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

KEY_INDEXES = [
    ("idx_node_public_key_node_id", "node_id"),
    ("idx_node_public_key_public_key", "public_key"),
]


def upgrade() -> None:
    op.create_table(
        "node_public_key",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("node_id", sa.BigInteger(), nullable=False),
        # Hex text of the key bytes.
        sa.Column("public_key", sa.String(), nullable=False),
        sa.Column("first_seen_us", sa.BigInteger(), nullable=True),
        sa.Column("last_seen_us", sa.BigInteger(), nullable=True),
    )
    for index_name, column in KEY_INDEXES:
        op.create_index(index_name, "node_public_key", [column], unique=False)


def downgrade() -> None:
    for index_name, _column in reversed(KEY_INDEXES):
        op.drop_index(index_name, table_name="node_public_key")
    op.drop_table("node_public_key")
