"""hub 0.1: the event buses' publish records.

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.

Revision ID: bus_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "bus_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def _bus_publishes() -> None:
    op.create_table("bus_publishes",
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("bus", sa.String(), nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("ack", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key")
    )
    op.create_index("ix_bus_publishes_execution_id", "bus_publishes", ["execution_id"], unique=False)


TABLES = {"bus_publishes": _bus_publishes}
