"""hub 0.1: spans.

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.

Revision ID: telemetry_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "telemetry_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def _spans() -> None:
    op.create_table("spans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trace_id", sa.String(length=32), nullable=False),
        sa.Column("span_id", sa.String(length=16), nullable=False),
        sa.Column("parent_span_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("service", sa.String(), nullable=True),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("start_time", sa.Float(), nullable=False),
        sa.Column("end_time", sa.Float(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("status_message", sa.Text(), nullable=True),
        sa.Column("attributes", sa.JSON(), nullable=True),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("links", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_spans_execution_id", "spans", ["execution_id"], unique=False)
    op.create_index("ix_spans_start", "spans", ["start_time"], unique=False)
    op.create_index("ix_spans_trace", "spans", ["trace_id", "start_time"], unique=False)


TABLES = {"spans": _spans}
