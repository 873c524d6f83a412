"""Add node.is_mqtt_gateway (the node has relayed packets to MQTT)

Revision ID: 23dad03d2e42
Revises: a0c9c13e118f
Create Date: 2026-02-13 00:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "23dad03d2e42"
down_revision: Union[str, Sequence[str], None] = "a0c9c13e118f"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.add_column("node", sa.Column("is_mqtt_gateway", sa.Boolean(), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE ... DROP COLUMN, which SQLite supports since 3.35.
    op.drop_column("node", "is_mqtt_gateway")
