"""Add route_return to traceroute (the route of the reply)

Revision ID: ac311b3782a1
Revises: 1717fa5c6545
Create Date: 2025-11-04 20:28:33.174137

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "ac311b3782a1"
down_revision: Union[str, Sequence[str], None] = "1717fa5c6545"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("traceroute", schema=None) as batch_op:
        batch_op.add_column(sa.Column("route_return", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    # On SQLite this copies the table, since the column is dropped in batch mode.
    with op.batch_alter_table("traceroute", schema=None) as batch_op:
        batch_op.drop_column("route_return")
