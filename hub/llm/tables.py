"""Tables of the LLM layer: every call, and the response cache. Times are epoch seconds."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

METADATA = MetaData()


# One request to a model (or one cache hit): what was asked, what came back, what it cost.
#
# ``attempt`` counts the step's attempts, ``round`` the repair rounds within one attempt (1 is
# the first question); ``retries`` and ``fallbacks`` are what the model client did for this round.
LLM_CALLS = Table(
    "llm_calls", METADATA,
    Column("id", Integer, primary_key=True),
    Column("execution_id", String),
    Column("path", String),
    Column("task_id", String),
    Column("attempt", Integer, nullable=False, default=1),
    Column("round", Integer, nullable=False, default=1),
    Column("status", String, nullable=False),
    Column("prompt_name", String),
    Column("prompt_version", Integer),
    Column("prompt_hash", String),
    Column("model_requested", String),
    Column("model", String),
    Column("litellm_model", String),
    Column("provider", String),
    Column("fallback_used", Boolean, nullable=False, default=False),
    Column("retries", Integer, nullable=False, default=0),
    Column("input_tokens", Integer, nullable=False, default=0),
    Column("output_tokens", Integer, nullable=False, default=0),
    Column("cost", Float, nullable=False, default=0.0),
    Column("latency_ms", Float, nullable=False, default=0.0),
    Column("cached", Boolean, nullable=False, default=False),
    Column("request", JSON),
    Column("response", Text),
    Column("errors", JSON),
    Column("trace_id", String),
    Column("created_at", Float, nullable=False),
    Index("ix_llm_calls_execution", "execution_id", "path"),
)


# A cached response, keyed by a hash of model, messages and parameters.
LLM_CACHE = Table(
    "llm_cache", METADATA,
    Column("key", String, primary_key=True),
    Column("model", String, nullable=False),
    Column("response", JSON),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)
