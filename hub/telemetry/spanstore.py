"""The hub's own trace store: an exporter that writes spans to the ``spans`` table, the queries
the trace viewer runs, and the execution's stored trace context.

The exporter is an ordinary OpenTelemetry :class:`SpanExporter`; put it behind a
``BatchSpanProcessor`` (``hub.telemetry.setup`` does) so that writes happen off the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from sqlalchemy import JSON, Engine, case, delete, func, select

from hub.core import attributes as A
from hub.core import keyset
from hub.store.json_text import json_text
from hub.store.store import EXECUTIONS, STEPS, param_mark, set_step_contexts
from hub.telemetry.events import StepEvent
from hub.telemetry.tables import SPANS

log = logging.getLogger(__name__)

PURGE_EVERY = 3600.0


def trace_hex(trace_id: int) -> str:
    return format(trace_id, "032x")


def span_hex(span_id: int) -> str:
    return format(span_id, "016x")


def _seconds(ns: int | None) -> float:
    return (ns or 0) / 1e9


def span_params(span: ReadableSpan) -> tuple[Any, ...]:
    """The ``spans`` row of one finished span as the parameters of :func:`_insert_sql`
    (:data:`_COLUMNS`, JSON columns encoded): made straight from the span, with no row dict in
    between (every span the hub keeps goes through here, in the exporter's thread). Tuples in
    attributes are JSON lists, as the encoder writes them."""
    ctx = span.context
    assert ctx is not None
    attrs = dict(span.attributes or {})
    start, end = _seconds(span.start_time), _seconds(span.end_time or span.start_time)
    status = span.status
    links = [
        {"trace_id": trace_hex(link.context.trace_id), "span_id": span_hex(link.context.span_id),
         "attributes": dict(link.attributes or {})}
        for link in span.links
    ]
    return (
        trace_hex(ctx.trace_id),
        span_hex(ctx.span_id),
        span_hex(span.parent.span_id) if span.parent else None,
        span.name,
        span.kind.name,
        span.resource.attributes.get("service.name") if span.resource else None,
        attrs.get(A.EXECUTION_ID),
        start,
        end,
        round((end - start) * 1000.0, 3),
        status.status_code.name,
        status.description,
        json_text(attrs),
        json_text([_event_row(e) for e in span.events]) if span.events else "[]",
        json_text(links) if links else "[]",
    )


def _event_row(event: Event) -> dict[str, Any]:
    if isinstance(event, StepEvent):  # a pure step's: strings and numbers, no sequences
        attributes = dict(event.attributes)
    else:
        attributes = {k: list(v) if isinstance(v, tuple) else v for k, v in (event.attributes or {}).items()}
    return {"name": event.name, "time": _seconds(event.timestamp), "attributes": attributes}


class DatabaseSpanExporter(SpanExporter):
    """Writes spans to the hub's database; deletes rows older than ``retention_days`` now and then."""

    def __init__(self, engine: Engine, retention_days: float | None = 7.0):
        self.engine = engine
        self.retention_days = retention_days
        self._last_purge = 0.0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        rows = [span_params(s) for s in spans if s.context is not None]
        if not rows:
            return SpanExportResult.SUCCESS
        try:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(_insert_sql(self.engine), rows)
            if self.retention_days and time.time() - self._last_purge > PURGE_EVERY:
                self._last_purge = time.time()
                purge(self.engine, self.retention_days)
        except Exception:
            log.exception("could not store %d span(s) in the hub database", len(rows))
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


_COLUMNS = ("trace_id", "span_id", "parent_span_id", "name", "kind", "service", "execution_id", "start_time",
            "end_time", "duration_ms", "status", "status_message", "attributes", "events", "links")
_JSON_COLUMNS = frozenset(c.name for c in SPANS.columns if isinstance(c.type, JSON))


def _insert_sql(engine: Engine) -> str:
    """The driver-level INSERT of span rows (JSON columns encoded by :func:`span_params`): one
    prepared statement for a whole batch, without Core's per-row parameter processing."""
    mark = param_mark(engine)
    cast = engine.dialect.name != "sqlite"
    values = ", ".join(f"CAST({mark} AS JSON)" if cast and c in _JSON_COLUMNS else mark for c in _COLUMNS)
    return f"INSERT INTO {SPANS.name} ({', '.join(_COLUMNS)}) VALUES ({values})"


def purge(engine: Engine, retention_days: float, now: float | None = None) -> int:
    """Delete spans that started more than ``retention_days`` ago; returns how many."""
    cutoff = (now or time.time()) - retention_days * 86400.0
    with engine.begin() as conn:
        return int(conn.execute(delete(SPANS).where(SPANS.c.start_time < cutoff)).rowcount or 0)


# -- execution trace context ---------------------------------------------------------------------


def save_execution_context(engine: Engine, execution_id: str, trace_id: str, span_id: str | None) -> None:
    """Remember an execution's root span so that every later run of it joins the same trace.

    Written as the execution starts (a run that dies is continued in the same trace), once per
    execution: one prepared statement, without a Core statement's compile-cache work (a quarter
    of the cost on SQLite).
    """
    mark = param_mark(engine)
    sql = f"UPDATE {EXECUTIONS.name} SET trace_id = {mark}, span_id = {mark} WHERE id = {mark}"
    with engine.begin() as conn:
        conn.exec_driver_sql(sql, (trace_id, span_id, execution_id))


def step_context(engine: Engine, execution_id: str, path: str) -> tuple[str | None, str | None]:
    """Trace and span id of the newest run of one step (the parent of a subflow's child)."""
    with engine.connect() as conn:
        row = conn.execute(
            select(STEPS.c.trace_id, STEPS.c.span_id)
            .where(STEPS.c.execution_id == execution_id, STEPS.c.path == path)
            .order_by(STEPS.c.id.desc())
            .limit(1)
        ).first()
    return (row[0], row[1]) if row else (None, None)


def execution_context(engine: Engine, execution_id: str) -> tuple[str | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(EXECUTIONS.c.trace_id, EXECUTIONS.c.span_id).where(EXECUTIONS.c.id == execution_id)
        ).first()
    return (row[0], row[1]) if row else (None, None)


def save_step_contexts(engine: Engine, execution_id: str, spans: Sequence[tuple[str, int, str, str]]) -> None:
    """Write ``(path, attempt, trace_id, span_id)`` onto the step runs, in one transaction (what
    the run's final write did not carry: a subflow step, a run that paused or died)."""
    if spans:
        with engine.begin() as conn:
            set_step_contexts(conn, execution_id, spans)


# -- queries for the viewer ----------------------------------------------------------------------


def trace_spans(engine: Engine, trace_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(SPANS).where(SPANS.c.trace_id == trace_id).order_by(SPANS.c.start_time))
        return [dict(r._mapping) for r in rows]


SCAN_BATCH = 200
SCAN_LIMIT = 20_000  # executions looked at for one page when span filters skip most of them


def trace_page(
    engine: Engine,
    *,
    flow: str | None = None,
    state: str | None = None,
    since: float | None = None,
    until: float | None = None,
    min_duration_ms: float | None = None,
    errors_only: bool = False,
    limit: int = 50,
    after: list[Any] | None = None,
) -> tuple[list[dict[str, Any]], list[Any] | None]:
    """Executions that have a stored trace, newest first (by the execution's creation), with the
    trace's span statistics; a page after ``(created_at, execution_id)``.

    The executions are read in keyset order through their ``created_at`` indexes and the spans
    are summed only for the traces of the page (``ix_spans_trace``), so a page costs the same
    deep into the history as at its start. ``since``/``until`` bound the execution's creation;
    ``flow`` is ``namespace.flow_id`` or a bare ``flow_id``. When span filters (``min_duration_ms``,
    ``errors_only``) skip most executions, at most :data:`SCAN_LIMIT` are looked at for one page:
    the page may then be short. Returns the page and the key the next page starts after (None at
    the end).
    """
    query = select(
        EXECUTIONS.c.id, EXECUTIONS.c.namespace, EXECUTIONS.c.flow_id, EXECUTIONS.c.state,
        EXECUTIONS.c.trace_id, EXECUTIONS.c.created_at,
    ).where(EXECUTIONS.c.trace_id.is_not(None))
    if flow:
        if "." in flow:
            namespace, flow_id = flow.rsplit(".", 1)
            query = query.where(EXECUTIONS.c.namespace == namespace, EXECUTIONS.c.flow_id == flow_id)
        else:
            query = query.where(EXECUTIONS.c.flow_id == flow)
    if state:
        query = query.where(EXECUTIONS.c.state == state.upper())
    if since is not None:
        query = query.where(EXECUTIONS.c.created_at >= since)
    if until is not None:
        query = query.where(EXECUTIONS.c.created_at <= until)
    order = ((EXECUTIONS.c.created_at, True), (EXECUTIONS.c.id, True))
    found: list[dict[str, Any]] = []
    scanned, more = 0, True
    with engine.connect() as conn:
        while more and len(found) < limit and scanned < SCAN_LIMIT:
            rows = conn.execute(keyset.page(query, order, after, SCAN_BATCH)).all()
            more = len(rows) == SCAN_BATCH
            scanned += len(rows)
            stats = _trace_stats(conn, [r.trace_id for r in rows]) if rows else {}
            for index, r in enumerate(rows):
                after = [r.created_at, r.id]
                trace = _trace_row(r, stats.get(r.trace_id))
                if trace is None or (errors_only and not trace["errors"]):
                    continue
                if min_duration_ms is not None and trace["duration_ms"] < min_duration_ms:
                    continue
                found.append(trace)
                if len(found) == limit:
                    more = more or index < len(rows) - 1
                    break
    return found, (after if more else None)


def _trace_stats(conn: Any, trace_ids: list[str]) -> dict[str, Any]:
    query = (
        select(
            SPANS.c.trace_id,
            func.min(SPANS.c.start_time).label("start"),
            func.max(SPANS.c.end_time).label("end"),
            func.count().label("spans"),
            func.sum(case((SPANS.c.status == "ERROR", 1), else_=0)).label("errors"),
        )
        .where(SPANS.c.trace_id.in_(sorted(set(trace_ids))))
        .group_by(SPANS.c.trace_id)
    )
    return {row.trace_id: row for row in conn.execute(query)}


def _trace_row(execution: Any, stats: Any) -> dict[str, Any] | None:
    if stats is None:  # tracing was off, or its spans are not stored yet
        return None
    return {
        "execution_id": execution.id,
        "flow": f"{execution.namespace}.{execution.flow_id}",
        "state": execution.state,
        "trace_id": execution.trace_id,
        "created_at": execution.created_at,
        "start_time": stats.start,
        "end_time": stats.end,
        "duration_ms": round((stats.end - stats.start) * 1000.0, 3),
        "spans": int(stats.spans),
        "errors": int(stats.errors or 0),
    }
