"""Tracing as engine middleware: one trace per execution, one span per step attempt.

Span tree of an execution::

    execution sales.lead_enrichment          root; its ids are stored on the execution row
      step company / execute_tool http.request   one span per attempt
        GET                                   (httpx instrumentation)
      step qualify
        chat gpt-4o                           (hub.telemetry.genai, from llm.chat)
      step per_item                           containers are parents of their children
        execute_tool email.send
    resume sales.lead_enrichment             a later run (after a pause, on any process):
      execute_tool approval                   child of the stored root, same trace id

Nothing here runs inside a task; the runner calls :meth:`TracingMiddleware.step` around each
attempt and :meth:`TracingMiddleware.execution` around each run of an execution.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from hub.core import attributes as A
from hub.engine.runner import Middleware, PauseSignal, Run, StepCall, StepFailed
from hub.engine.states import State
from hub.errors import HubError, Paused, Retry
from hub.store.store import Store
from hub.telemetry import spanstore
from hub.telemetry.current import Telemetry, inside_execution, reset_current, set_current
from hub.telemetry.events import PureStep, add_step_events
from hub.telemetry.metrics import instruments
from hub.telemetry.processors import forget_redactor, register_redactor
from hub.telemetry.propagation import remote_context, trigger_context

_ENDED = frozenset({State.SUCCESS, State.FAILED, State.WARNING, State.SKIPPED})
_TRACE_ID, _SPAN_ID = "trace_id", "span_id"  # the execution row's columns


def pure_step_mode(value: bool | str | None = None) -> str:
    """How pure steps (``set``, ``log``, ``fail``) are traced: ``events`` (default: an event on the
    parent span), ``spans`` (a span each) or ``off``. From ``HUB_TRACE_PURE_STEPS``."""
    if value is True:
        return "spans"
    if value is False:
        return "off"
    text = (value if isinstance(value, str) else os.environ.get(A.ENV_PURE_STEPS, "")).strip().lower()
    if text in ("spans", "on", "true", "1", "yes"):
        return "spans"
    if text in ("off", "false", "0", "no", "none"):
        return "off"
    return "events"


class TracingMiddleware(Middleware):
    """Opens the execution and step spans; see the module docstring for the tree."""

    def __init__(
        self,
        store: Store,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: Any = None,
        *,
        registry: Any = None,
        pure_steps: bool | str | None = None,
    ):
        self.db = store.engine
        self.registry = registry
        self.pure_steps = pure_steps  # type: ignore[assignment]
        self.tracer = trace.get_tracer(A.TRACER_NAME, tracer_provider=tracer_provider)
        self.instruments = instruments(meter_provider)
        self._retries: dict[tuple[str, str], dict[str, Any]] = {}
        # open spans of ours -> pure steps that ran under them, not yet events (see _pure_event)
        self._buffers: dict[trace.Span, list[PureStep]] = {}
        self._pure_types: dict[Any, bool] = {}

    # -- events from the engine ----------------------------------------------------------------

    @property
    def pure_steps(self) -> str:
        """``events``, ``spans`` or ``off`` (see :func:`pure_step_mode`)."""
        return self._pure_steps

    @pure_steps.setter
    def pure_steps(self, value: bool | str | None) -> None:
        self._pure_steps = pure_step_mode(value)
        # as events they are recorded from the engine's step events, without wrapping the call
        self.wraps_pure_steps = self._pure_steps == "spans"

    def listener(self, event: dict[str, Any]) -> None:
        """Engine listener: retry decisions (for the next attempt's span), pure steps as events on
        the current (parent) span, and step log lines.

        This runs for every step, so a pure step costs a tuple appended to its parent span's
        buffer here; the events are made once the parent's children are done (:meth:`_flush`)."""
        kind = event.get("event")
        if kind == "step":
            error = event.get("error")
            if error and "retry_in" in error:
                self._retries[(event["execution_id"], event["path"])] = error
            if self._pure_steps == "events" and self._is_pure(event.get("type")):
                state = event.get("state")
                if state is State.SUCCESS or state in _ENDED:
                    self._pure_event(event, state, error)
        elif kind == "log":
            span = trace.get_current_span()
            if span.is_recording():
                self._flush(span)  # the steps before this line come before it
                span.add_event(A.EVENT_LOG, {"level": event.get("level") or "info", "message": event.get("message") or ""})

    def _is_pure(self, task_type: Any) -> bool:
        pure = self._pure_types.get(task_type)
        if pure is None:
            kind = self.registry.get(task_type) if self.registry is not None else None
            pure = self._pure_types[task_type] = bool(getattr(kind, "pure", False))
        return pure

    def _pure_event(self, event: dict[str, Any], state: Any, error: dict[str, Any] | None) -> None:
        """A pure step (no I/O, microseconds) as an event on its parent span: visible in the trace
        at a fraction of a span's cost. The event carries the (already redacted) error."""
        parent = trace.get_current_span()
        entry: PureStep = (
            event["task_id"], event["type"], str(state), event.get("attempt", 1), event["path"],
            event.get("duration"),
            None if not error else str(error.get("message") or ""),
            None if not error or not error.get("type") else str(error["type"]),
            time.time_ns(),
        )
        buffered = self._buffers.get(parent)
        if buffered is not None:
            buffered.append(entry)
        elif parent.is_recording():  # a parent span the hub did not open
            add_step_events(parent, [entry])

    def _open(self, span: trace.Span) -> None:
        """Buffer the pure steps that run under ``span`` (one of ours) until :meth:`_flush`."""
        if span.is_recording():
            self._buffers[span] = []

    def _flush(self, span: trace.Span, close: bool = False) -> None:
        """The buffered pure steps of ``span`` as its events, before any later event of its own."""
        buffered = self._buffers.pop(span, None) if close else self._buffers.get(span)
        if buffered:
            add_step_events(span, buffered)
            if not close:
                buffered.clear()

    # -- executions ----------------------------------------------------------------------------

    async def execution(self, run: Run, call: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        row = run.execution
        flow = run.flow
        key = f"{flow.namespace}.{flow.id}"
        resumed = bool(row.get("trace_id"))
        parent = self._parent(row, resumed)
        attrs: dict[str, Any] = {
            A.EXECUTION_ID: run.id,
            A.FLOW: key,
            A.FLOW_NAMESPACE: flow.namespace,
            A.FLOW_ID: flow.id,
            A.FLOW_REVISION: int(row.get("revision") or 0),
        }
        trigger = row.get("trigger") or {}
        if trigger.get("type"):
            attrs[A.TRIGGER_TYPE] = str(trigger["type"])
        if row.get("parent_id"):
            attrs[A.EXECUTION_PARENT_ID] = row["parent_id"]
        if resumed:
            attrs[A.EXECUTION_RESUMED] = True
        name = f"{'resume' if resumed else 'execution'} {key}"
        span = self.tracer.start_span(name, context=parent, kind=SpanKind.INTERNAL, attributes=attrs)
        ctx = span.get_span_context()
        register_redactor(ctx.trace_id, run.redactor)
        if not resumed:
            sampled = ctx.trace_flags.sampled
            self._remember_context(
                run, spanstore.trace_hex(ctx.trace_id), spanstore.span_hex(ctx.span_id) if sampled else None
            )
            if row.get("started_at") and row.get("created_at"):
                self.instruments.queue_wait.record(
                    max(0.0, row["started_at"] - row["created_at"]), {A.FLOW: key}
                )
        elif span.is_recording():
            span.add_event(A.EVENT_RESUMED)
        token = set_current(Telemetry(self.tracer, self.instruments, run.redactor, run.id))
        self._open(span)
        state = "FAILED"
        result: Any = None
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                try:
                    result = await call()
                finally:
                    self._flush(span)
            state = str(result.get("state"))
            if state == State.FAILED:
                message = (result.get("error") or {}).get("message") or "failed"
                span.set_status(Status(StatusCode.ERROR, run.redactor(str(message))))
                span.set_attribute(A.ERROR_TYPE, str((result.get("error") or {}).get("type") or "StepFailed"))
            elif state == State.PAUSED:
                span.add_event(A.EVENT_PAUSED)
            return result
        except asyncio.CancelledError:
            state = State.KILLED
            span.set_status(Status(StatusCode.ERROR, "the execution was killed"))
            raise
        except BaseException as exc:
            _record_exception(span, exc, run.redactor)
            raise
        finally:
            self._save_context(run, result)
            self._flush(span, close=True)
            span.set_attribute(A.EXECUTION_STATE, state)
            span.end()
            forget_redactor(ctx.trace_id, run.redactor)
            reset_current(token)
            self.instruments.executions.add(1, {A.FLOW: key, A.EXECUTION_STATE: state})
            pending, run.step_contexts = run.step_contexts, []  # what the final write did not take
            for attempt_key in [k for k in self._retries if k[0] == run.id]:
                self._retries.pop(attempt_key, None)
            spanstore.save_step_contexts(self.db, run.id, pending)

    def _remember_context(self, run: Run, trace_id: str, span_id: str | None) -> None:
        """Put the execution's trace context on its row, so that every later run of it (after a
        pause, a crash, on any process) and its subflows join the same trace.

        It goes with the run's next write of the row (no transaction of its own): a task step's
        RUNNING row (written once it has run the engine's START_DELAY, or as it pauses), its end,
        a child flow it starts, or the execution's end — so a quick run writes it with what it
        writes anyway. A control step (a loop, a subflow) writes it first, on its own
        (:meth:`_save_context`): it may pause or start children on other workers before either.
        """
        values = getattr(run, "row_values", None)
        if values is None:
            spanstore.save_execution_context(self.db, run.id, trace_id, span_id)
        else:
            values.update({_TRACE_ID: trace_id, _SPAN_ID: span_id})

    def _save_context(self, run: Run, row: Any = None) -> None:
        """Write the trace context now if the run has not written it yet (``row``: the execution
        row as the run left it, if it returned one)."""
        values = getattr(run, "row_values", None)
        if not values or _TRACE_ID not in values:
            return
        trace_id, span_id = values.pop(_TRACE_ID), values.pop(_SPAN_ID, None)
        if isinstance(row, dict) and row.get(_TRACE_ID) == trace_id:
            return  # the final write carried it
        spanstore.save_execution_context(self.db, run.id, trace_id, span_id)

    def _parent(self, row: dict[str, Any], resumed: bool) -> Context | None:
        """Where the execution's span hangs: its stored root, the caller, the parent step, or here."""
        if resumed:
            return remote_context(row["trace_id"], row.get("span_id"))
        trigger = row.get("trigger") or {}
        from_trigger = trigger_context(trigger)
        if from_trigger is not None:
            return from_trigger
        parent_id = row.get("parent_id") or trigger.get("parent_execution_id")
        if parent_id and row.get("parent_path"):
            trace_id, span_id = spanstore.step_context(self.db, parent_id, row["parent_path"])
            if not trace_id:
                trace_id, span_id = spanstore.execution_context(self.db, parent_id)
            if trace_id:
                return remote_context(trace_id, span_id)
        if inside_execution():
            return Context()  # started by another execution, not its child: a trace of its own
        return None  # the caller's context (an API request, a queue job's carrier)

    # -- steps ---------------------------------------------------------------------------------

    async def step(self, info: StepCall, call: Callable[[], Awaitable[Any]]) -> Any:
        run, task = info.run, info.task
        pure = not info.control and self._is_pure(task.type)
        if pure and self._pure_steps != "spans":  # set/log/fail: an event on the parent span (made
            return await call()  # by the listener from the engine's step event), or nothing
        if info.control:  # before its children: they may pause, or start on other workers
            self._save_context(run)
        span = self._step_span(info)
        if info.control:
            self._open(span)  # a block: its pure children become events on this span
        state = State.FAILED
        started = time.perf_counter()
        try:
            token = otel_context.attach(trace.set_span_in_context(span))
            try:
                output = await call()
            finally:
                otel_context.detach(token)
                if info.control:
                    self._flush(span)
            state = State.SUCCESS
            if isinstance(output, dict):
                _decision(span, output, run.redactor)
            return output
        except BaseException as exc:
            state = _step_ended_by(span, exc, run.redactor)
            raise
        finally:
            if info.control:
                self._flush(span, close=True)
            span.set_attribute(A.STEP_STATE, str(state))
            span.end()
            self.instruments.step_duration.record(
                time.perf_counter() - started, {A.STEP_TYPE: task.type, A.STEP_STATE: str(state)}
            )

    def _step_span(self, info: StepCall) -> trace.Span:
        """The attempt's span, started: its attributes, a link to the attempt it resumes, and its
        context put on the step's row (with the run's final write; a subflow's at once)."""
        run, task = info.run, info.task
        tool = not info.control and "." in task.type and not task.type.startswith(A.MODEL_STEP_PREFIXES)
        attrs: dict[str, Any] = {
            A.STEP_ID: task.id,
            A.STEP_TYPE: task.type,
            A.STEP_ATTEMPT: info.attempt,
        }
        if info.path != task.id:  # inside a loop or a nested block (``notify[3]``)
            attrs[A.STEP_PATH] = info.path
        if info.control:
            attrs[A.STEP_CONTROL] = True
        if tool:
            attrs[A.GEN_AI_OPERATION_NAME] = A.OPERATION_EXECUTE_TOOL
            attrs[A.GEN_AI_TOOL_NAME] = task.type
        previous = run.steps.get(info.path)
        retry = self._retries.pop((run.id, info.path), None)
        if retry is None and previous is not None and previous.get("state") == State.FAILED and previous.get("error"):
            retry = previous["error"]  # a failed attempt of an earlier run (e.g. Interrupted)
        if retry is not None:
            attrs[A.STEP_RETRY_REASON] = run.redactor(f"{retry.get('type', 'Error')}: {retry.get('message', '')}")
            if retry.get("retry_in") is not None:
                attrs[A.STEP_RETRY_DELAY] = float(retry["retry_in"])
        links: list[Link] = []
        resumed = previous is not None and previous.get("state") == State.PAUSED
        if resumed:
            attrs[A.STEP_RESUMED] = True
            if previous.get("trace_id") and previous.get("span_id"):  # type: ignore[union-attr]
                paused = trace.get_current_span(remote_context(previous["trace_id"], previous["span_id"]))  # type: ignore[index]
                links.append(Link(paused.get_span_context(), {"hub.link": "paused attempt"}))
        name = f"execute_tool {task.type}" if tool else f"step {task.id}"
        span = self.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, links=links)
        ctx = span.get_span_context()
        if ctx.trace_flags.sampled:
            entry = (info.path, info.attempt, spanstore.trace_hex(ctx.trace_id), spanstore.span_hex(ctx.span_id))
            if info.control and task.type == "subflow":  # its child may start on another worker now
                spanstore.save_step_contexts(self.db, run.id, [entry])
            else:
                run.step_contexts.append(entry)
        if resumed and span.is_recording():
            since = previous.get("ended_at") or previous.get("started_at")  # type: ignore[union-attr]
            span.add_event(A.EVENT_RESUMED, {A.STEP_WAITED: round(max(0.0, time.time() - since), 3)} if since else {})
        return span


def _step_ended_by(span: trace.Span, exc: BaseException, redact: Callable[[Any], Any]) -> State:
    """Record on a step's span how ``exc`` ended the attempt; the state the span then shows."""
    if isinstance(exc, Paused):
        event: dict[str, Any] = {"reason": redact(str(exc.reason))}
        if exc.resume_at is not None:
            event["resume_at"] = float(exc.resume_at)
        span.add_event(A.EVENT_PAUSED, event)
        return State.PAUSED
    if isinstance(exc, PauseSignal):
        span.add_event(A.EVENT_PAUSED, {"resume_at": float(exc.resume_at)} if exc.resume_at else {})
        return State.PAUSED
    if isinstance(exc, StepFailed):  # a child failed; the child's span holds the exception
        message = redact(str(exc.error.get("message") or "a step inside failed"))
        span.set_status(Status(StatusCode.ERROR, message))
        span.set_attribute(A.ERROR_TYPE, str(exc.error.get("type") or "StepFailed"))
        return State.FAILED
    if isinstance(exc, asyncio.CancelledError):
        span.set_status(Status(StatusCode.ERROR, "cancelled (timeout or kill)"))
        return State.CANCELLED
    if isinstance(exc, Retry):
        span.add_event(A.EVENT_RETRY, {"reason": redact(str(exc))})
        span.set_status(Status(StatusCode.ERROR, redact(str(exc))))
        span.set_attribute(A.ERROR_TYPE, "Retry")
        return State.FAILED
    _record_exception(span, exc, redact)
    return State.FAILED


def _decision(span: trace.Span, output: dict[str, Any], redact: Callable[[Any], Any]) -> None:
    """Who decided a gate. Approval outputs carry ``decided_by`` (a name, or a mapping with
    ``identity``/``who`` and ``channel``) and ``decision``."""
    by = output.get("decided_by")
    if by is None:
        return
    if isinstance(by, dict):
        if by.get("channel"):
            span.set_attribute(A.DECISION_CHANNEL, redact(str(by["channel"])))
        by = by.get("identity") or by.get("who")
    if by is not None:
        span.set_attribute(A.DECIDED_BY, redact(str(by)))
    decision = output.get("decision", output.get("approved"))
    if decision is not None:
        span.set_attribute(A.DECISION, redact(str(decision)))


def _record_exception(span: trace.Span, exc: BaseException, redact: Callable[[Any], Any]) -> None:
    """``span.record_exception`` with every string redacted, and ERROR status."""
    message = redact(str(exc) or type(exc).__name__)
    attrs: dict[str, Any] = {
        "exception.type": type(exc).__qualname__,
        "exception.message": message,
        "exception.stacktrace": redact("".join(traceback.format_exception(exc))),
    }
    span.add_event("exception", attrs)
    span.set_status(Status(StatusCode.ERROR, message))
    span.set_attribute(A.ERROR_TYPE, type(exc).__qualname__)
    if isinstance(exc, HubError):
        retryable = exc.to_dict().get("retryable")
        if retryable is not None:
            span.set_attribute(A.HUB_ERROR_RETRYABLE, bool(retryable))


def install(engine: Any, tracer_provider: trace.TracerProvider | None = None, meter_provider: Any = None) -> TracingMiddleware:
    """Add tracing to an engine (outermost middleware) and subscribe to its events."""
    for layer in engine.middleware:
        if isinstance(layer, TracingMiddleware):
            return layer
    layer = TracingMiddleware(engine.store, tracer_provider, meter_provider, registry=engine.registry)
    engine.middleware.insert(0, layer)
    engine.listeners.append(layer.listener)
    return layer
