"""Span processors the hub puts in front of every exporter.

:class:`RedactingProcessor` is the last line of defence for secrets: every span of an execution's
trace (the hub's own, httpx's, anyone's) passes through the execution's redactor before any
exporter sees it, so a secret in a URL, an error message or an attribute set by a library never
leaves the process. :class:`HubTracesOnly` keeps the database exporter to traces that contain an
execution (not every API request).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import Link, Status

from hub.core import attributes as A
from hub.telemetry.events import StepEvent

Redact = Callable[[Any], Any]


class _Bounded:
    """A small thread-safe LRU map (trace id → value); old traces fall out."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[int, Any] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, key: int, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: int) -> Any:
        with self._lock:
            return self._items.get(key)


_redactors = _Bounded()


def register_redactor(trace_id: int, redact: Redact) -> None:
    """Make every span of ``trace_id`` pass through ``redact`` before export."""
    _redactors.put(trace_id, redact)


def redactor_for(trace_id: int) -> Redact | None:
    return _redactors.get(trace_id)  # type: ignore[no-any-return]


def redacted_span(span: ReadableSpan, redact: Redact) -> ReadableSpan:
    """A copy of ``span`` with every string value (attributes, events, links, status) redacted."""

    def clean(attrs: Any) -> dict[str, Any]:
        return {k: _clean_value(v, redact) for k, v in (attrs or {}).items()}

    status = span.status
    if status.description:
        status = Status(status.status_code, redact(status.description))
    return ReadableSpan(
        name=redact(span.name),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=clean(span.attributes),
        events=[
            e.redacted(redact) if isinstance(e, StepEvent) else Event(e.name, clean(e.attributes), e.timestamp)
            for e in span.events
        ],
        links=[Link(link.context, clean(link.attributes)) for link in span.links],
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _clean_value(value: Any, redact: Redact) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, tuple | list):
        return tuple(redact(v) if isinstance(v, str) else v for v in value)
    return value


class RedactingProcessor(SpanProcessor):
    """Wraps a processor (batch, simple, ...) and hands it redacted copies of ended spans."""

    def __init__(self, inner: SpanProcessor):
        self.inner = inner

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        redact = redactor_for(context.trace_id) if context is not None else None
        if redact is not None and getattr(redact, "values", True):
            span = redacted_span(span, redact)
        self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class HubTracesOnly(SpanProcessor):
    """Passes on only spans of traces in which a hub execution span started in this process."""

    def __init__(self, inner: SpanProcessor):
        self.inner = inner
        self._traces = _Bounded()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attrs = span.attributes or {}
        if A.EXECUTION_ID in attrs and span.context is not None:
            self._traces.put(span.context.trace_id, True)
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if span.context is not None and self._traces.get(span.context.trace_id):
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
