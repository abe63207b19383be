"""Carrying a trace across process boundaries: queue jobs, webhooks, stored executions.

Queue (arq) — the producer puts ``inject()`` into the job, the worker runs it inside
``attached(carrier)``::

    await redis.enqueue_job("run_execution", execution_id, trace=inject())
    ...
    async def run_execution(ctx, execution_id, trace=None):
        with attached(trace):
            await engine.run(execution_id)

(The execution's own trace context is stored on its row, so a resumed or re-queued execution
joins its trace on any worker even without this; the carrier adds the link to the *caller*.)

Webhooks — put the caller's ``traceparent`` into the trigger dict; the execution's root span
continues it::

    trigger = trace_trigger({"type": "webhook", "id": trigger_id}, request.headers)
    await engine.start(flow, inputs, trigger=trigger)
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACE_KEYS = ("traceparent", "tracestate")
_w3c = TraceContextTextMapPropagator()


def inject(carrier: dict[str, Any] | None = None, context: Context | None = None) -> dict[str, Any]:
    """The current trace context (W3C ``traceparent``/``tracestate``, baggage) as a dict."""
    carrier = {} if carrier is None else carrier
    propagate.inject(carrier, context=context)
    return carrier


def extract(carrier: Mapping[str, Any] | None) -> Context:
    """The context a carrier made by :func:`inject` (or HTTP headers) describes."""
    return propagate.extract(dict(carrier or {}))


@contextmanager
def attached(carrier: Mapping[str, Any] | None) -> Iterator[Context]:
    """Run a block (a queue job) inside the trace context of ``carrier``; no-op without one."""
    if not carrier:
        yield otel_context.get_current()
        return
    ctx = extract(carrier)
    token = otel_context.attach(ctx)
    try:
        yield ctx
    finally:
        otel_context.detach(token)


def trace_trigger(trigger: dict[str, Any] | None, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``trigger`` plus the ``traceparent``/``tracestate`` of ``headers`` (or of the current span).

    Header names are matched case-insensitively. An invalid ``traceparent`` is dropped, not stored.
    """
    out = dict(trigger or {})
    found: dict[str, str] = {}
    if headers is not None:
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        found = {k: lowered[k] for k in TRACE_KEYS if k in lowered}
    if "traceparent" not in found:
        found = {}
        current = trace.get_current_span().get_span_context()
        if current.is_valid:
            _w3c.inject(found)
    if "traceparent" in found and trace.get_current_span(_w3c.extract(found)).get_span_context().is_valid:
        out.update(found)
    return out


def trigger_context(trigger: Mapping[str, Any] | None) -> Context | None:
    """The context stored by :func:`trace_trigger`, or None."""
    if not trigger or not trigger.get("traceparent"):
        return None
    ctx = _w3c.extract({k: str(trigger[k]) for k in TRACE_KEYS if trigger.get(k)})
    return ctx if trace.get_current_span(ctx).get_span_context().is_valid else None


def remote_context(trace_id: str, span_id: str | None, sampled: bool = True) -> Context:
    """A context whose parent is a span of another process (stored as hex ids).

    Without ``span_id`` (the stored root was not sampled) the parent is a made-up span of the
    same trace with the sampled flag off, so a parent-based sampler drops the continuation too.
    """
    sid = int(span_id, 16) if span_id else random.getrandbits(64) or 1
    flags = TraceFlags(TraceFlags.SAMPLED if (sampled and span_id) else TraceFlags.DEFAULT)
    parent = SpanContext(int(trace_id, 16), sid, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(NonRecordingSpan(parent), Context())
