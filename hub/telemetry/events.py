"""Pure steps (``set``, ``log``, ``fail``) as ``step {id}`` events on their parent span.

A pure step runs in microseconds, so what tracing it costs matters: the tracing middleware keeps
each one as a :data:`PureStep` tuple while its parent's children run, and adds the events in one
go once they are done (:func:`add_step_events`). Each event is a :class:`StepEvent` that makes its
attribute mapping from the tuple the first time something reads it — an exporter, normally in its
own thread — instead of while the execution runs. What an exporter sees is an ordinary event:
name ``step {id}``, the step's end time, and the attributes of :func:`step_event_attributes`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import Event
from opentelemetry.sdk.trace import Span as SdkSpan

from hub.core import attributes as A

# (task id, type, state, attempt, path, duration in seconds or None, error message or None,
#  error type or None, end time in ns since the epoch)
PureStep = tuple[str, str, str, int, str, "float | None", "str | None", "str | None", int]

MAX_ATTRIBUTES = 7  # the most step_event_attributes makes


def step_event_attributes(step: PureStep) -> dict[str, Any]:
    """``hub.step.type``, ``hub.step.state``, ``hub.step.duration_ms``; ``hub.step.attempt`` after
    the first, ``hub.step.path`` when it differs from the id; on failure ``hub.step.error`` (the
    redacted message) and ``error.type``."""
    task_id, task_type, state, attempt, path, duration, message, error_type, _ = step
    attrs: dict[str, Any] = {A.STEP_TYPE: task_type, A.STEP_STATE: state}
    if attempt > 1:
        attrs[A.STEP_ATTEMPT] = attempt
    if path != task_id:
        attrs[A.STEP_PATH] = path
    if duration is not None:
        attrs[A.STEP_DURATION_MS] = round(duration * 1000, 3)
    if message is not None:
        attrs[A.STEP_ERROR] = message
    if error_type is not None:
        attrs[A.ERROR_TYPE] = error_type
    return attrs


class StepEvent(Event):
    """The event of one pure step; its (immutable) attributes are made on first read."""

    def __init__(self, step: PureStep):
        super().__init__(f"step {step[0]}", None, step[8])
        self._step = step

    @property
    def attributes(self) -> Mapping[str, Any]:
        made = self._attributes
        if made is None:  # two exporter threads may both get here: they make the same mapping
            made = self._attributes = MappingProxyType(step_event_attributes(self._step))
        return made

    @property
    def dropped_attributes(self) -> int:
        return 0

    def redacted(self, redact: Callable[[Any], Any]) -> StepEvent:
        """This event with its error message through ``redact`` (the only value that can hold a
        secret: ids, paths, types and states come from the flow's definition)."""
        message = self._step[6]
        if message is None:
            return self
        step = self._step
        return StepEvent((*step[:6], redact(message), *step[7:]))


def _direct_append(span: trace.Span) -> Callable[[Event], None] | None:
    """The SDK span's own event append, when its limits cannot change the step events (no value
    length limit, room for every attribute); otherwise None and ``add_event`` does the checking."""
    if not isinstance(span, SdkSpan):
        return None
    limits = getattr(span, "_limits", None)
    append = getattr(span, "_add_event", None)
    if append is None or limits is None or limits.max_attribute_length is not None:
        return None
    if limits.max_event_attributes is not None and limits.max_event_attributes < MAX_ATTRIBUTES:
        return None
    return append


def add_step_events(span: trace.Span, steps: list[PureStep]) -> None:
    """A ``step {id}`` event on ``span`` for each pure step, stamped with the step's end time.

    Their values are strings and numbers made by the hub, so the checks ``add_event`` runs on
    every value have nothing to do unless the span has limits that could cut them.
    """
    append = _direct_append(span)
    if append is not None:
        for step in steps:
            append(StepEvent(step))
    else:
        for step in steps:
            span.add_event(f"step {step[0]}", step_event_attributes(step), timestamp=step[8])
