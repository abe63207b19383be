"""The hub's tables (SQLModel). Times are epoch seconds (float) so both databases agree."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


class FlowRevision(SQLModel, table=True):
    """One version of a flow's YAML. A changed definition gets the next revision number."""

    __tablename__ = "flow_revisions"
    __table_args__ = (UniqueConstraint("namespace", "flow_id", "revision"),)

    id: int | None = Field(default=None, primary_key=True)
    namespace: str = Field(index=True)
    flow_id: str = Field(index=True)
    revision: int
    content_hash: str
    source: str = Field(sa_column=Column(Text, nullable=False))
    disabled: bool = False
    deleted: bool = False
    created_at: float


class Execution(SQLModel, table=True):
    """One run of a flow. Lists are newest first, ``(created_at, id)`` descending, filtered by
    state, flow, namespace or label (:class:`ExecutionLabel`): each filter has an index that
    ends in that order, so a page costs the same however long the history."""

    __tablename__ = "executions"
    __table_args__ = (
        Index("ix_executions_flow_state", "namespace", "flow_id", "state"),
        Index("ix_executions_state_owner", "state", "owner"),
        Index("ix_executions_created", "created_at", "id"),
        Index("ix_executions_state_created", "state", "created_at", "id"),
        Index("ix_executions_flow_created", "flow_id", "namespace", "created_at", "id"),
        Index("ix_executions_namespace_created", "namespace", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    namespace: str
    flow_id: str
    revision: int
    state: str
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    outputs: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    labels: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    trigger: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    parent_id: str | None = Field(default=None, index=True)
    parent_path: str | None = None
    restarted_from: str | None = None
    owner: str | None = None
    heartbeat_at: float | None = None
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    updated_at: float
    trace_id: str | None = None
    span_id: str | None = None
    resume_at: float | None = None


class ExecutionLabel(SQLModel, table=True):
    """One label of one execution, for the label filter of the lists (the ``labels`` column keeps
    them all for reading). ``value`` is the text of a string, the JSON of anything else."""

    __tablename__ = "execution_labels"
    __table_args__ = (Index("ix_execution_labels_value", "key", "value", "created_at", "execution_id"),)

    execution_id: str = Field(primary_key=True)
    key: str = Field(primary_key=True)
    value: str = Field(sa_column=Column(Text, nullable=False))
    created_at: float


class StepRun(SQLModel, table=True):
    """One attempt of one step. ``path`` names the step within the execution (``notify[3]``)."""

    __tablename__ = "step_runs"
    __table_args__ = (Index("ix_step_runs_execution_path", "execution_id", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    execution_id: str
    path: str
    task_id: str
    task_type: str
    attempt: int = 1
    state: str
    params: Any = Field(default=None, sa_column=Column(JSON))
    output: Any = Field(default=None, sa_column=Column(JSON))
    output_ref: str | None = None
    error: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    started_at: float
    ended_at: float | None = None
    trace_id: str | None = None
    span_id: str | None = None


class LogLine(SQLModel, table=True):
    __tablename__ = "logs"

    id: int | None = Field(default=None, primary_key=True)
    execution_id: str = Field(index=True)
    path: str | None = None
    level: str
    message: str = Field(sa_column=Column(Text, nullable=False))
    ts: float


class Blob(SQLModel, table=True):
    """Large values kept out of the execution record (step outputs past the inline limit)."""

    __tablename__ = "blobs"

    id: str = Field(primary_key=True)
    execution_id: str | None = Field(default=None, index=True)
    content_type: str = "application/json"
    size: int
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: float

