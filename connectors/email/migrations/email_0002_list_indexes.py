"""Indexes in the order of the message lists paged by cursor: newest first, all or by status (the outbox).

Revision ID: email_0002
Revises: email_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "email_0002"
down_revision = "email_0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("email_messages", "ix_email_messages_created", ("created_at", "id")),
    ("email_messages", "ix_email_messages_status_created", ("status", "created_at", "id")),
)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, name, columns in INDEXES:
        if name not in {index["name"] for index in inspector.get_indexes(table)}:
            op.create_index(name, table, list(columns))


def downgrade() -> None:
    for table, name, _ in INDEXES:
        op.drop_index(name, table_name=table)
