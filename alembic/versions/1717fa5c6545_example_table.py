"""Add the example table (a sample table with assorted column types)

Revision ID: 1717fa5c6545
Revises: add_time_us_cols
Create Date: 2025-10-26 20:59:04.347066

MeshView ships this sample table in its history and keeps it at head; it is reproduced here
so that both histories leave the same tables behind.  Nothing reads or writes it.
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

# Identifiers Alembic reads to place this file in the revision graph.
revision: str = "1717fa5c6545"
down_revision: Union[str, Sequence[str], None] = "add_time_us_cols"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "example",
        sa.Column("id", sa.Integer(), nullable=False, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default="1"),
        sa.Column(
            "created_at",
            sa.DateTime(),
            nullable=False,
            server_default=sa.text("CURRENT_TIMESTAMP"),
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    # Lookups by name.
    op.create_index("idx_example_name", "example", ["name"])


def downgrade() -> None:
    op.drop_index("idx_example_name", table_name="example")
    op.drop_table("example")
