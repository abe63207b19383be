"""Greetings keep when they were last given.

Revision ID: sample_0002
Revises: sample_0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "sample_0002"
down_revision: str | None = "sample_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sample_greetings", sa.Column("last_at", sa.Float(), nullable=True))
