"""Approval edit revisions: a gate counts its form's edits, a vote keeps the revision it saw and its edits.

Was step 6 of the hand-written migrations: a database that went through it has the columns
already, and only what is missing is added.

Revision ID: approvals_0002
Revises: approvals_0001
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "approvals_0002"
down_revision = "approvals_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    wanted: dict[str, list[sa.Column[Any]]] = {
        "approval_gates": [sa.Column("revision", sa.Integer(), server_default="0", nullable=False)],
        "approval_votes": [sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
                           sa.Column("changes", sa.JSON(), nullable=True)],
    }
    for table, columns in wanted.items():
        have = {column["name"] for column in inspector.get_columns(table)}
        for column in columns:
            if column.name not in have:
                op.add_column(table, column)
