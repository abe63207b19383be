"""What hub instrumentation inside a running execution uses: the tracer, the instruments and the
execution's redactor. The tracing middleware sets it for the execution; task code (LLM calls)
reads it, so spans land in the same tracer provider as their step's span."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace

from hub.core import attributes as A
from hub.telemetry.metrics import Instruments, instruments


@dataclass(frozen=True)
class Telemetry:
    tracer: trace.Tracer
    instruments: Instruments
    redact: Callable[[Any], Any]
    execution_id: str | None = None


_current: ContextVar[Telemetry | None] = ContextVar("hub_telemetry", default=None)


def _same(value: Any) -> Any:
    return value


def current() -> Telemetry:
    """The running execution's telemetry, or the global tracer and meter outside one."""
    found = _current.get()
    if found is not None:
        return found
    return Telemetry(trace.get_tracer(A.TRACER_NAME), instruments(None), _same)


def inside_execution() -> bool:
    return _current.get() is not None


def set_current(value: Telemetry | None) -> Any:
    return _current.set(value)


def reset_current(token: Any) -> None:
    _current.reset(token)
