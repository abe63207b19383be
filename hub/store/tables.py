"""The hub's tables. Times are epoch seconds (float) so both databases agree.

SQLAlchemy Core tables, not SQLModel models: the store writes them with Core statements only,
and a worker that imported SQLModel would carry SQLAlchemy's ORM and a pydantic model per table
(~7 MiB of every worker process) for nothing. Plugins may still declare SQLModel tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

METADATA = MetaData()


# One version of a flow's YAML. A changed definition gets the next revision number.
FLOW_REVISIONS = Table(
    "flow_revisions", METADATA,
    Column("id", Integer, primary_key=True),
    Column("namespace", String, nullable=False, index=True),
    Column("flow_id", String, nullable=False, index=True),
    Column("revision", Integer, nullable=False),
    Column("content_hash", String, nullable=False),
    Column("source", Text, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("namespace", "flow_id", "revision"),
)


# One run of a flow. Lists are newest first, ``(created_at, id)`` descending, filtered by
# state, flow, namespace or label (``execution_labels``): each filter has an index that
# ends in that order, so a page costs the same however long the history.
EXECUTIONS = Table(
    "executions", METADATA,
    Column("id", String, primary_key=True),
    Column("namespace", String, nullable=False),
    Column("flow_id", String, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("state", String, nullable=False),
    Column("inputs", JSON),
    Column("outputs", JSON),
    Column("error", JSON),
    Column("labels", JSON),
    Column("trigger", JSON),
    Column("parent_id", String, index=True),
    Column("parent_path", String),
    Column("restarted_from", String),
    Column("owner", String),
    Column("heartbeat_at", Float),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float),
    Column("ended_at", Float),
    Column("updated_at", Float, nullable=False),
    Column("trace_id", String),
    Column("span_id", String),
    Column("resume_at", Float),
    Index("ix_executions_flow_state", "namespace", "flow_id", "state"),
    Index("ix_executions_state_owner", "state", "owner"),
    Index("ix_executions_created", "created_at", "id"),
    Index("ix_executions_state_created", "state", "created_at", "id"),
    Index("ix_executions_flow_created", "flow_id", "namespace", "created_at", "id"),
    Index("ix_executions_namespace_created", "namespace", "created_at", "id"),
)


# One label of one execution, for the label filter of the lists (the ``labels`` column keeps
# them all for reading). ``value`` is the text of a string, the JSON of anything else.
EXECUTION_LABELS = Table(
    "execution_labels", METADATA,
    Column("execution_id", String, primary_key=True),
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Index("ix_execution_labels_value", "key", "value", "created_at", "execution_id"),
)


# One attempt of one step. ``path`` names the step within the execution (``notify[3]``).
STEP_RUNS = Table(
    "step_runs", METADATA,
    Column("id", Integer, primary_key=True),
    Column("execution_id", String, nullable=False),
    Column("path", String, nullable=False),
    Column("task_id", String, nullable=False),
    Column("task_type", String, nullable=False),
    Column("attempt", Integer, nullable=False, default=1),
    Column("state", String, nullable=False),
    Column("params", JSON),
    Column("output", JSON),
    Column("output_ref", String),
    Column("error", JSON),
    Column("data", JSON),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float),
    Column("trace_id", String),
    Column("span_id", String),
    Index("ix_step_runs_execution_path", "execution_id", "path"),
)


LOGS = Table(
    "logs", METADATA,
    Column("id", Integer, primary_key=True),
    Column("execution_id", String, nullable=False, index=True),
    Column("path", String),
    Column("level", String, nullable=False),
    Column("message", Text, nullable=False),
    Column("ts", Float, nullable=False),
)


# Large values kept out of the execution record (step outputs past the inline limit).
BLOBS = Table(
    "blobs", METADATA,
    Column("id", String, primary_key=True),
    Column("execution_id", String, index=True),
    Column("content_type", String, nullable=False, default="application/json"),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", Float, nullable=False),
)
