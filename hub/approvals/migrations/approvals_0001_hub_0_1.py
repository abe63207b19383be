"""hub 0.1: approval gates, votes, links, messages and audit.

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.

Revision ID: approvals_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "approvals_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def _approval_audit() -> None:
    op.create_table("approval_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gate_id", sa.String(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_approval_audit_at", "approval_audit", ["at"], unique=False)
    op.create_index("ix_approval_audit_gate_id", "approval_audit", ["gate_id"], unique=False)


def _approval_gates() -> None:
    op.create_table("approval_gates",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("form", sa.JSON(), nullable=True),
        sa.Column("approvers", sa.JSON(), nullable=True),
        sa.Column("escalation_approvers", sa.JSON(), nullable=True),
        sa.Column("started_by", sa.JSON(), nullable=True),
        sa.Column("channels", sa.JSON(), nullable=True),
        sa.Column("escalation_channels", sa.JSON(), nullable=True),
        sa.Column("required", sa.Integer(), nullable=False),
        sa.Column("allow_self_approval", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("deadline", sa.Float(), nullable=True),
        sa.Column("on_timeout", sa.String(), nullable=False),
        sa.Column("remind_every", sa.Float(), nullable=True),
        sa.Column("escalate_after", sa.Float(), nullable=True),
        sa.Column("link_expires_at", sa.Float(), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("last_reminded_at", sa.Float(), nullable=True),
        sa.Column("escalated_at", sa.Float(), nullable=True),
        sa.Column("notified_at", sa.Float(), nullable=True),
        sa.Column("decision", sa.String(), nullable=True),
        sa.Column("decided_at", sa.Float(), nullable=True),
        sa.Column("decided_by", sa.JSON(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("form_values", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("execution_id", "path")
    )
    op.create_index("ix_approval_gates_execution_id", "approval_gates", ["execution_id"], unique=False)
    op.create_index("ix_approval_gates_state", "approval_gates", ["state"], unique=False)


def _approval_links() -> None:
    op.create_table("approval_links",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("gate_id", sa.String(), nullable=False),
        sa.Column("identity", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_approval_links_gate_id", "approval_links", ["gate_id"], unique=False)


def _approval_messages() -> None:
    op.create_table("approval_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gate_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=True),
        sa.Column("ts", sa.String(), nullable=True),
        sa.Column("email_id", sa.String(), nullable=True),
        sa.Column("sent_at", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gate_id", "purpose", "target")
    )
    op.create_index("ix_approval_messages_gate_id", "approval_messages", ["gate_id"], unique=False)


def _approval_votes() -> None:
    op.create_table("approval_votes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gate_id", sa.String(), nullable=False),
        sa.Column("voter", sa.String(), nullable=False),
        sa.Column("identity", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("vote", sa.String(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("form", sa.JSON(), nullable=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("gate_id", "voter")
    )
    op.create_index("ix_approval_votes_gate_id", "approval_votes", ["gate_id"], unique=False)


TABLES = {"approval_audit": _approval_audit, "approval_gates": _approval_gates, "approval_links": _approval_links, "approval_messages": _approval_messages, "approval_votes": _approval_votes}
