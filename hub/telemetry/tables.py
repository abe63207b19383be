"""The ``spans`` table: the hub's own copy of its traces, read by the trace viewer.

Only spans of traces that contain a hub execution are kept (see :mod:`hub.telemetry.spanstore`);
old rows are deleted after ``HUB_TRACE_RETENTION_DAYS``. Times are epoch seconds, like the rest
of the store.
"""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table, Text

METADATA = MetaData()


SPANS = Table(
    "spans", METADATA,
    Column("id", Integer, primary_key=True),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("parent_span_id", String(16)),
    Column("name", Text, nullable=False),
    Column("kind", String, nullable=False, default="INTERNAL"),
    Column("service", String),
    Column("execution_id", String, index=True),
    Column("start_time", Float, nullable=False),
    Column("end_time", Float, nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("status", String, nullable=False, default="UNSET"),
    Column("status_message", Text),
    Column("attributes", JSON),
    Column("events", JSON),
    Column("links", JSON),
    Index("ix_spans_trace", "trace_id", "start_time"),
    Index("ix_spans_start", "start_time"),
)
