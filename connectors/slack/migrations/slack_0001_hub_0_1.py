"""hub 0.1: Slack posts.

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.

Revision ID: slack_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "slack_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    present = set(sa.inspect(op.get_bind()).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()


def _slack_posts() -> None:
    op.create_table("slack_posts",
        sa.Column("idempotency_key", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), nullable=False),
        sa.Column("ts", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key")
    )
    op.create_index("ix_slack_posts_execution_id", "slack_posts", ["execution_id"], unique=False)


TABLES = {"slack_posts": _slack_posts}
