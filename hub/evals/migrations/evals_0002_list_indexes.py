"""Indexes in the order of the list of eval runs paged by cursor: newest first, all or by name.

Revision ID: evals_0002
Revises: evals_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "evals_0002"
down_revision = "evals_0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("eval_runs", "ix_eval_runs_created", ("created_at", "id")),
    ("eval_runs", "ix_eval_runs_name_created", ("name", "created_at", "id")),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, name, columns in INDEXES:
        if name not in {index["name"] for index in inspector.get_indexes(table)}:
            op.create_index(name, table, list(columns))


def downgrade() -> None:
    for table, name, _ in INDEXES:
        op.drop_index(name, table_name=table)
