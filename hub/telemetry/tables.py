"""The ``spans`` table: the hub's own copy of its traces, read by the trace viewer.

Only spans of traces that contain a hub execution are kept (see :mod:`hub.telemetry.spanstore`);
old rows are deleted after ``HUB_TRACE_RETENTION_DAYS``. Times are epoch seconds, like the rest
of the store.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel


class SpanRow(SQLModel, table=True):
    __tablename__ = "spans"
    __table_args__ = (
        Index("ix_spans_trace", "trace_id", "start_time"),
        Index("ix_spans_start", "start_time"),
    )

    id: int | None = Field(default=None, primary_key=True)
    trace_id: str = Field(max_length=32)
    span_id: str = Field(max_length=16)
    parent_span_id: str | None = Field(default=None, max_length=16)
    name: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = "INTERNAL"
    service: str | None = None
    execution_id: str | None = Field(default=None, index=True)
    start_time: float
    end_time: float
    duration_ms: float
    status: str = "UNSET"
    status_message: str | None = Field(default=None, sa_column=Column(Text))
    attributes: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    events: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    links: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
