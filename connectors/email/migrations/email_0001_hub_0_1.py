"""hub 0.1: email messages (the outbox).

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.

Revision ID: email_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "email_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def _email_messages() -> None:
    op.create_table("email_messages",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("namespace", sa.String(), nullable=True),
        sa.Column("flow_id", sa.String(), nullable=True),
        sa.Column("task_path", sa.String(), nullable=True),
        sa.Column("backend", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("from_address", sa.String(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=True),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=True),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("provider_id", sa.String(), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("delivery", sa.JSON(), nullable=True),
        sa.Column("events", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key")
    )
    op.create_index("ix_email_messages_created_at", "email_messages", ["created_at"], unique=False)
    op.create_index("ix_email_messages_execution_id", "email_messages", ["execution_id"], unique=False)
    op.create_index("ix_email_messages_provider_id", "email_messages", ["provider_id"], unique=False)
    op.create_index("ix_email_messages_status", "email_messages", ["status"], unique=False)


TABLES = {"email_messages": _email_messages}
