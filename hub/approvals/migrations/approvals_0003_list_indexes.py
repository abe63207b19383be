"""Indexes in the order of the approval lists paged by cursor: gates newest first (all, or by
state), and one gate's audit entries newest first.

Revision ID: approvals_0003
Revises: approvals_0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "approvals_0003"
down_revision = "approvals_0002"
branch_labels = None
depends_on = None

INDEXES = (
    ("approval_gates", "ix_approval_gates_created", ("created_at", "id")),
    ("approval_gates", "ix_approval_gates_state_created", ("state", "created_at", "id")),
    ("approval_audit", "ix_approval_audit_gate_id_id", ("gate_id", "id")),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, name, columns in INDEXES:
        if name not in {index["name"] for index in inspector.get_indexes(table)}:
            op.create_index(name, table, list(columns))


def downgrade() -> None:
    for table, name, _ in INDEXES:
        op.drop_index(name, table_name=table)
