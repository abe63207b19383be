"""``HUB_LOG_FORMAT=json``: one JSON object per log line, each naming its execution and trace.

    {"time": "2026-12-03T11:52:07.415Z", "level": "WARNING", "logger": "hub.engine.runner",
     "message": "...", "execution_id": "01a2...", "flow": "sales.leads",
     "trace_id": "4bf9...", "span_id": "00f0...", "process": "worker"}

``execution_id`` and ``flow`` come from :class:`ExecutionLogContext`, an engine middleware that
marks the run of each execution (so they are there with tracing off too); ``trace_id`` and
``span_id`` from the current span (empty outside one). A record's ``exc_info`` becomes
``exception`` (the formatted traceback), and fields given with ``extra=`` are kept.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from hub.engine.run import Middleware, Run
from hub.telemetry.logs import TraceContextFilter

_execution: ContextVar[tuple[str, str] | None] = ContextVar("hub_log_execution", default=None)

# the attributes every LogRecord has; anything else on a record was passed with ``extra=``
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "trace_id", "span_id",
                                                     "otelTraceID", "otelSpanID", "taskName", "color_message"}


class ExecutionLogContext(Middleware):
    """Marks each execution's run, so that every log line written meanwhile names it."""

    wraps_pure_steps = False

    async def execution(self, run: Run, call: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        token = _execution.set((run.id, run.flow.key))
        try:
            return await call()
        finally:
            _execution.reset(token)


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (see the module docstring)."""

    def __init__(self, process: str = "hub"):
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "trace_id"):
            TraceContextFilter().filter(record)
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        running = _execution.get()
        line["execution_id"], line["flow"] = running if running else (None, None)
        line["trace_id"] = getattr(record, "trace_id", "") or None
        line["span_id"] = getattr(record, "span_id", "") or None
        line["process"] = self.process
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        return json.dumps(line, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_format: str, process: str, engine: Any = None) -> None:
    """Set up the root logger of a hub process (``serve``, ``worker``, ``run``) in ``log_format``
    (``text`` or ``json``); with ``json`` and an ``engine``, its executions are marked for the lines."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
        if engine is not None:
            mark_executions(engine)
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())


def mark_executions(engine: Any) -> None:
    """Add :class:`ExecutionLogContext` to ``engine`` once (outermost: every other layer's lines
    carry the execution too)."""
    if not any(isinstance(layer, ExecutionLogContext) for layer in engine.middleware):
        engine.middleware.insert(0, ExecutionLogContext())
