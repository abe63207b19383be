"""hub 0.1: LLM calls and cache, prompt versions, labels, label moves and pins.

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.
Label moves of schema version 4 or older get the columns version 5 added (who, why, eval run, forced).

Revision ID: llm_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "llm_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()
    if "prompt_label_moves" in present:  # the columns of hand-written version 5, where missing
        have = {column["name"] for column in sa.inspect(bind).get_columns("prompt_label_moves")}
        for column in (sa.Column("actor", sa.String()), sa.Column("reason", sa.Text()),
                       sa.Column("eval_run", sa.String()),
                       sa.Column("forced", sa.Boolean(), server_default=sa.false(), nullable=False)):
            if column.name not in have:
                op.add_column("prompt_label_moves", column)


def _llm_cache() -> None:
    op.create_table("llm_cache",
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key")
    )
    op.create_index("ix_llm_cache_expires_at", "llm_cache", ["expires_at"], unique=False)


def _llm_calls() -> None:
    op.create_table("llm_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("task_id", sa.String(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("prompt_name", sa.String(), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("prompt_hash", sa.String(), nullable=True),
        sa.Column("model_requested", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("litellm_model", sa.String(), nullable=True),
        sa.Column("provider", sa.String(), nullable=True),
        sa.Column("fallback_used", sa.Boolean(), nullable=False),
        sa.Column("retries", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_llm_calls_execution", "llm_calls", ["execution_id", "path"], unique=False)


def _prompt_label_moves() -> None:
    op.create_table("prompt_label_moves",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("moved_at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("eval_run", sa.String(), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_prompt_label_moves_name", "prompt_label_moves", ["name"], unique=False)


def _prompt_labels() -> None:
    op.create_table("prompt_labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "label")
    )
    op.create_index("ix_prompt_labels_name", "prompt_labels", ["name"], unique=False)


def _prompt_pins() -> None:
    op.create_table("prompt_pins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("execution_id", "path")
    )
    op.create_index("ix_prompt_pins_execution_id", "prompt_pins", ["execution_id"], unique=False)


def _prompt_versions() -> None:
    op.create_table("prompt_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name", "version")
    )
    op.create_index("ix_prompt_versions_name", "prompt_versions", ["name"], unique=False)


TABLES = {"llm_cache": _llm_cache, "llm_calls": _llm_calls, "prompt_label_moves": _prompt_label_moves, "prompt_labels": _prompt_labels, "prompt_pins": _prompt_pins, "prompt_versions": _prompt_versions}
