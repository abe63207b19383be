"""hub 0.1: eval runs, results and promotions, online evals and scores.

Creates each table that is missing, so that it also adopts a database the hand-written
migrations of hub 0.1 made (schema version 1-5) or one made before this plugin was installed.
Eval results of schema version 4 or older get the columns version 5 added (judge cost, spend, cache).

Revision ID: evals_0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "evals_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    for name, create in TABLES.items():
        if name not in present:
            create()
    if "eval_results" in present:  # the columns of hand-written version 5, where missing
        have = {column["name"] for column in sa.inspect(bind).get_columns("eval_results")}
        for column in (sa.Column("judge_cost", sa.Float(), server_default="0", nullable=False),
                       sa.Column("spent", sa.Float(), server_default="0", nullable=False),
                       sa.Column("cached", sa.Boolean(), server_default=sa.false(), nullable=False)):
            if column.name not in have:
                op.add_column("eval_results", column)


def _eval_promotions() -> None:
    op.create_table("eval_promotions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_name", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("eval_file", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_eval_promotions_prompt_name", "eval_promotions", ["prompt_name"], unique=False)


def _eval_results() -> None:
    op.create_table("eval_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("variant", sa.String(), nullable=False),
        sa.Column("prompt_name", sa.String(), nullable=True),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("prompt_hash", sa.String(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("case_id", sa.String(), nullable=False),
        sa.Column("case_index", sa.Integer(), nullable=False),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=True),
        sa.Column("input", sa.JSON(), nullable=True),
        sa.Column("expected", sa.JSON(), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("assertions", sa.JSON(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("judge_cost", sa.Float(), nullable=False),
        sa.Column("spent", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("call_ids", sa.JSON(), nullable=True),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_eval_results_run", "eval_results", ["run_id", "variant"], unique=False)


def _eval_runs() -> None:
    op.create_table("eval_runs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("file", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.Column("target", sa.JSON(), nullable=True),
        sa.Column("variants", sa.JSON(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("baseline_id", sa.String(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_eval_runs_name", "eval_runs", ["name"], unique=False)


def _online_evals() -> None:
    op.create_table("online_evals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("prompt_name", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("sample_rate", sa.Float(), nullable=False),
        sa.Column("window", sa.Integer(), nullable=False),
        sa.Column("alert_below", sa.Float(), nullable=True),
        sa.Column("min_samples", sa.Integer(), nullable=False),
        sa.Column("alert_flow", sa.String(), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=True),
        sa.Column("file", sa.String(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("alerting", sa.Boolean(), nullable=False),
        sa.Column("alerted_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name")
    )
    op.create_index("ix_online_evals_prompt_name", "online_evals", ["prompt_name"], unique=False)


def _online_scores() -> None:
    op.create_table("online_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("eval_name", sa.String(), nullable=False),
        sa.Column("call_id", sa.Integer(), nullable=True),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("prompt_name", sa.String(), nullable=False),
        sa.Column("prompt_version", sa.Integer(), nullable=True),
        sa.Column("model", sa.String(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("assertions", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_online_scores_call_id", "online_scores", ["call_id"], unique=False)
    op.create_index("ix_online_scores_eval", "online_scores", ["eval_name", "id"], unique=False)
    op.create_index("ix_online_scores_execution_id", "online_scores", ["execution_id"], unique=False)


TABLES = {"eval_promotions": _eval_promotions, "eval_results": _eval_results, "eval_runs": _eval_runs, "online_evals": _online_evals, "online_scores": _online_scores}
