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


class _PerTrace:
    """A thread-safe map trace id → value, whose entries go when the trace is done with here
    (the callers say when). Bounded all the same (the oldest trace falls out): a span never
    ended must not keep its trace's entry for the life of the process."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[int, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: int) -> Any:
        with self.lock:
            return self._items.get(key)

    def peek(self, key: int) -> Any:
        """Read under :attr:`lock` (held by the caller)."""
        return self._items.get(key)

    def set(self, key: int, value: Any) -> None:
        """Set under :attr:`lock` (held by the caller)."""
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def drop(self, key: int) -> None:
        """Drop under :attr:`lock` (held by the caller)."""
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


_redactors = _PerTrace()  # trace id → the redactors of the runs of it in progress here
_retired = _PerTrace()
"""Trace id → the redactors of its runs that ended here having read a secret. A span of the
trace can end after its run: the API's server span around an enrichment, or a span made by a
sync step's thread that outlived its step's timeout or kill. Those still go through the run's
redactor, for as long as the bounded map keeps the trace (the newest 4,096 traces that read a
secret); runs that read none keep nothing here."""


def register_redactor(trace_id: int, redact: Redact) -> None:
    """Make every span of ``trace_id`` pass through ``redact`` before export, until the run that
    registered it calls :func:`forget_redactor`. Several runs of one trace at once (subflows of a
    fan-out) each register theirs, and its spans go through all of them."""
    with _redactors.lock:
        _redactors.set(trace_id, (*(_redactors.peek(trace_id) or ()), redact))


def forget_redactor(trace_id: int, redact: Redact) -> None:
    """The run that registered ``redact`` is over. Its redactor is retired, not dropped, when it
    read a secret: spans of the trace that end later still go through it (see :data:`_retired`)."""
    with _redactors.lock:
        kept = tuple(r for r in _redactors.peek(trace_id) or () if r is not redact)
        if kept:
            _redactors.set(trace_id, kept)
        else:
            _redactors.drop(trace_id)
    if getattr(redact, "values", True):
        with _retired.lock:
            _retired.set(trace_id, (*(_retired.peek(trace_id) or ()), redact))


def redactor_for(trace_id: int) -> Redact | None:
    """What a span of ``trace_id`` goes through: None when no run of the trace here has read a
    secret (no copy of the span is needed), whether the run is in progress or has ended."""
    found = [r for r in (*(_redactors.get(trace_id) or ()), *(_retired.get(trace_id) or ()))
             if getattr(r, "values", True)]
    if len(found) <= 1:
        return found[0] if found else None

    def every(value: Any) -> Any:
        for redact in found:
            value = redact(value)
        return value

    return every


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
        if redact is not None:
            span = redacted_span(span, redact)
        self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class HubTracesOnly(SpanProcessor):
    """Passes on only spans of traces in which a hub execution span started in this process.

    It counts the spans of each trace open here, and forgets the trace when the last has ended
    (a worker that kept every trace it ran would grow with them)."""

    def __init__(self, inner: SpanProcessor):
        self.inner = inner
        self._traces = _PerTrace()  # trace id → [open spans here, a hub execution started in it]

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        context = span.context
        if context is not None:
            hub = A.EXECUTION_ID in (span.attributes or {})
            with self._traces.lock:
                entry = self._traces.peek(context.trace_id)
                if entry is None:
                    self._traces.set(context.trace_id, [1, hub])
                else:
                    entry[0] += 1
                    entry[1] = entry[1] or hub
        self.inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None:
            return
        with self._traces.lock:
            entry = self._traces.peek(context.trace_id)
            if entry is not None:
                entry[0] -= 1
                if entry[0] <= 0:
                    self._traces.drop(context.trace_id)
        if entry is not None and entry[1]:
            self.inner.on_end(span)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)
