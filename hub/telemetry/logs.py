"""Trace and span ids on log records, so a log line finds its step's span and back.

Every ``logging.LogRecord`` made while a span is current gets ``trace_id`` and ``span_id``
(hex; empty strings outside a span), plus the OpenTelemetry names ``otelTraceID`` /
``otelSpanID``. Use them in a format: ``%(asctime)s %(levelname)s [%(trace_id)s/%(span_id)s] %(message)s``.
Step log lines written through ``ctx.log`` also become ``hub.log`` events on the step's span.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

_installed = False


def _stamp(record: logging.LogRecord) -> None:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        trace_id, span_id = format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")
    else:
        trace_id = span_id = ""
    record.trace_id = record.otelTraceID = trace_id
    record.span_id = record.otelSpanID = span_id


class TraceContextFilter(logging.Filter):
    """A filter (for handlers or loggers) that adds ``trace_id``/``span_id`` to records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            _stamp(record)
        return True


def install_log_correlation() -> None:
    """Stamp every record made in this process (wraps the log record factory, once)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _stamp(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
