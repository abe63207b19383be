"""Tables of evals: runs, one row per case run (version × model × case × repeat), and the
promotions an eval run justified. Times are epoch seconds."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

METADATA = MetaData()


# One run of an eval file: its variants, summary and verdict.
EVAL_RUNS = Table(
    "eval_runs", METADATA,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False, index=True),
    Column("file", String),
    Column("status", String, nullable=False),
    Column("passed", Boolean),
    Column("target", JSON),
    Column("variants", JSON),
    Column("spec", JSON),
    Column("summary", JSON),
    Column("baseline_id", String),
    Column("error", Text),
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Index("ix_eval_runs_created", "created_at", "id"),
    Index("ix_eval_runs_name_created", "name", "created_at", "id"),
)


# One case run: input, output, every assertion with its reason, and the calls it made.
EVAL_RESULTS = Table(
    "eval_results", METADATA,
    Column("id", Integer, primary_key=True),
    Column("run_id", String, nullable=False),
    Column("variant", String, nullable=False),
    Column("prompt_name", String),
    Column("prompt_version", Integer),
    Column("prompt_hash", String),
    Column("model", String),
    Column("case_id", String, nullable=False),
    Column("case_index", Integer, nullable=False),
    Column("repeat", Integer, nullable=False, default=1),
    Column("tags", JSON),
    Column("input", JSON),
    Column("expected", JSON),
    Column("output", JSON),
    Column("text", Text),
    Column("error", JSON),
    Column("passed", Boolean, nullable=False),
    Column("score", Float, nullable=False),
    Column("assertions", JSON),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("judge_cost", Float, nullable=False, default=0.0),
    Column("spent", Float, nullable=False, default=0.0),
    Column("cached", Boolean, nullable=False, default=False),
    Column("call_ids", JSON),
    Column("execution_id", String),
    Column("trace_id", String),
    Column("created_at", Float, nullable=False),
    Index("ix_eval_results_run", "run_id", "variant"),
)


# A label moved onto a prompt version because an eval run passed.
EVAL_PROMOTIONS = Table(
    "eval_promotions", METADATA,
    Column("id", Integer, primary_key=True),
    Column("prompt_name", String, nullable=False, index=True),
    Column("label", String, nullable=False),
    Column("version", Integer, nullable=False),
    Column("previous", Integer),
    Column("run_id", String, nullable=False),
    Column("eval_file", String),
    Column("created_at", Float, nullable=False),
)


# An eval file attached to a prompt label: a share of its production calls is scored.
ONLINE_EVALS = Table(
    "online_evals", METADATA,
    Column("id", Integer, primary_key=True),
    Column("name", String, nullable=False, unique=True),
    Column("prompt_name", String, nullable=False, index=True),
    Column("label", String, nullable=False),
    Column("sample_rate", Float, nullable=False),
    Column("window", Integer, nullable=False),
    Column("alert_below", Float),
    Column("min_samples", Integer, nullable=False, default=10),
    Column("alert_flow", String),
    Column("spec", JSON),
    Column("file", String),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("alerting", Boolean, nullable=False, default=False),
    Column("alerted_at", Float),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)


# One sampled production call, scored by an attached eval's assertions.
ONLINE_SCORES = Table(
    "online_scores", METADATA,
    Column("id", Integer, primary_key=True),
    Column("eval_name", String, nullable=False),
    Column("call_id", Integer, index=True),
    Column("execution_id", String, index=True),
    Column("path", String),
    Column("trace_id", String),
    Column("prompt_name", String, nullable=False),
    Column("prompt_version", Integer),
    Column("model", String),
    Column("passed", Boolean, nullable=False),
    Column("score", Float, nullable=False),
    Column("assertions", JSON),
    Column("error", JSON),
    Column("cost", Float, nullable=False, default=0.0),
    Column("created_at", Float, nullable=False),
    Index("ix_online_scores_eval", "eval_name", "id"),
)
