"""Pure steps (set, log, fail) by default: ``step {id}`` events on their parent span, in order with
the span's other events, stored and shown by the viewer; and the execution's trace context on
its row however the run ends."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event

from hub.core import attributes as A
from hub.engine.leaf import START_DELAY
from hub.engine.run import Middleware
from hub.tasks.base import Params, TaskContext
from hub.telemetry.cli import waterfall
from hub.telemetry.events import StepEvent, add_step_events, step_event_attributes
from hub.telemetry.review import execution_trace
from tests.telemetry.conftest import SECRET, every_string, named, sync, tree

FLOW = """
id: light
tasks:
  - {id: first, type: set, values: {x: 1}}
  - {id: say, type: log, message: "hello {{ secret('API_TOKEN') }}"}
  - id: loop
    type: for_each
    items: [1, 2]
    tasks:
      - {id: each, type: set, values: {v: "{{ item }}"}}
  - {id: bad, type: fail, message: "no {{ secret('API_TOKEN') }}", allow_failure: true}
  - id: hold
    type: sequential
    tasks:
      - {id: before, type: set, values: {y: 2}}
      - {id: gate, type: test_gate}
"""


@pytest.fixture
def default_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TRACE_PURE_STEPS")  # the telemetry conftest asks for spans


def _events(span: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(e.name, dict(e.attributes)) for e in span.events]


@sync
async def test_pure_steps_are_events_with_id_time_state_and_error_in_order(traced, default_mode) -> None:
    one = traced()
    row = await one.engine.execute(one.flow(FLOW))
    assert row["state"] == "PAUSED"
    spans = one.spans()
    assert tree(spans) == [("execution default.light", [("step loop", []), ("step hold", [("step gate", [])])])]
    root, loop, hold = (named(spans, n)[0] for n in ("execution default.light", "step loop", "step hold"))

    # the steps in the order they ran, the log line of ``say`` before its own event, the pause last
    assert [e.name for e in root.events] == ["step first", "hub.log", "step say", "step bad", A.EVENT_PAUSED]
    times = [e.timestamp for e in root.events]
    assert times == sorted(times) and root.start_time <= times[0] and times[-1] <= root.end_time
    first, say, bad = (dict(e.attributes) for e in root.events if e.name in ("step first", "step say", "step bad"))
    assert first == {A.STEP_TYPE: "set", A.STEP_STATE: "SUCCESS", A.STEP_DURATION_MS: first[A.STEP_DURATION_MS]}
    assert isinstance(first[A.STEP_DURATION_MS], float) and first[A.STEP_DURATION_MS] >= 0
    assert say[A.STEP_TYPE] == "log" and say[A.STEP_STATE] == "SUCCESS"
    assert bad[A.STEP_STATE] == "WARNING" and bad[A.STEP_ERROR] == "******" and bad[A.ERROR_TYPE] == "FailTask"

    # inside a block: on the block's span, with the path that tells the iterations apart
    assert [(name, attrs[A.STEP_PATH], attrs[A.STEP_STATE]) for name, attrs in _events(loop)] == [
        ("step each", "each[0]", "SUCCESS"),
        ("step each", "each[1]", "SUCCESS"),
    ]
    assert all(loop.start_time <= e.timestamp <= loop.end_time for e in loop.events)
    assert [e.name for e in hold.events] == ["step before", A.EVENT_PAUSED]  # the block paused after it
    for span in spans:
        for text in every_string(span):
            assert SECRET not in text

    # the hub's own copy has the same events, and the waterfall shows each step with its state
    found = execution_trace(one.engine.store, row["id"])
    [stored_root] = found["spans"]
    assert [(e["name"], e["attributes"]) for e in stored_root["events"]] == _events(root)
    stored_loop = stored_root["children"][0]
    assert [(e["name"], e["attributes"]) for e in stored_loop["events"]] == _events(loop)
    lines = waterfall(found)
    labels = [line.split("█")[0].strip() for line in lines[1:]]
    assert labels == [
        "execution default.light", "step first", "step say", "step loop", "step each", "step each", "step bad",
        "step hold", "step before", "step gate",
    ]
    assert lines[1 + labels.index("step bad")].endswith("WARNING  error: ******")
    assert lines[1 + labels.index("step loop") + 1].startswith("    step each")


@sync
async def test_span_limits_apply_to_pure_step_events_as_to_any_event(traced, default_mode, monkeypatch) -> None:
    monkeypatch.setenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
    one = traced()
    flow = "id: short\ntasks:\n  - {id: bad, type: fail, message: a long message, allow_failure: true}\n"
    row = await one.engine.execute(one.flow(flow))
    assert row["state"] == "WARNING"
    [root] = one.spans()
    [(name, attrs)] = _events(root)
    assert name == "step bad"
    assert attrs[A.STEP_ERROR] == "a lo" and attrs[A.ERROR_TYPE] == "Fail" and attrs[A.STEP_TYPE] == "fail"

    monkeypatch.setenv("OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "2")
    monkeypatch.delenv("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT")
    two = traced()
    await two.engine.execute(two.flow(flow.replace("short", "few")))
    root = named(two.spans(), "execution default.few")[0]
    [(_, attrs)] = _events(root)
    assert len(attrs) == 2 and root.events[0].dropped_attributes == len(step_event_attributes(_step(error="x"))) - 2


def _step(error: str | None = None) -> Any:
    return ("s", "fail", "FAILED" if error else "SUCCESS", 1, "s", 0.001, error, "FailTask" if error else None, 5)


def test_a_step_event_reads_like_any_event_and_redacts_its_error() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    from hub.telemetry.processors import redacted_span

    tracer = TracerProvider().get_tracer("t")
    fast, slow = tracer.start_span("fast"), tracer.start_span("slow")
    add_step_events(fast, [_step(), _step(error="token abc123 refused")])
    for step in (_step(), _step(error="token abc123 refused")):
        slow.add_event(f"step {step[0]}", step_event_attributes(step), timestamp=step[8])
    fast.end()
    slow.end()
    assert all(isinstance(e, StepEvent) for e in fast.events)
    assert [(e.name, dict(e.attributes), e.timestamp, e.dropped_attributes) for e in fast.events] == [
        (e.name, dict(e.attributes), e.timestamp, e.dropped_attributes) for e in slow.events
    ]
    with pytest.raises(TypeError):
        fast.events[1].attributes[A.STEP_ERROR] = "changed"  # type: ignore[index]

    def redact(value: Any) -> Any:
        return value.replace("abc123", "******") if isinstance(value, str) else value

    clean = redacted_span(fast, redact)
    assert clean.events[0] is fast.events[0]  # nothing in it to redact
    assert clean.events[1].attributes[A.STEP_ERROR] == "token ****** refused"
    assert fast.events[1].attributes[A.STEP_ERROR] == "token abc123 refused"


class _StoreWatch:
    """Statements that write the execution row's trace context: through SQLAlchemy, or on the
    store's SQLite writer connection (the driver's trace callback)."""

    def __init__(self, store: Any):
        self.engine = store.engine
        self.writer = store._writer()
        self.writes: list[str] = []
        event.listen(self.engine, "before_cursor_execute", self._seen)
        self.writer.set_trace_callback(self._statement)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._statement(statement)

    def _statement(self, statement: str) -> None:
        text = " ".join(statement.split()).lower().replace('"', "")
        if text.startswith("update executions") and "trace_id" in text.split(" where ")[0]:
            self.writes.append(text)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)
        self.writer.set_trace_callback(None)


class SeeTraceParams(Params):
    wait: float = 0.0


class SeeTrace:
    """Reads its execution's row while it runs (after ``wait`` seconds): what a crash at this
    point would leave."""

    type = "test.see_trace"
    Params = SeeTraceParams
    seen: list[Any] = []

    async def run(self, ctx: TaskContext, params: SeeTraceParams) -> Any:
        await asyncio.sleep(params.wait)
        SeeTrace.seen.append(ctx.store.get_execution(ctx.execution_id)["trace_id"])
        return {}


@sync
async def test_the_trace_context_goes_with_the_next_write_of_the_run(traced, default_mode) -> None:
    one = traced()
    one.engine.registry.add(SeeTrace)
    watch = _StoreWatch(one.engine.store)
    try:
        # nothing but pure steps: no write of its own; the final update of the row carries it
        row = await one.engine.execute(one.flow("id: quick\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n"))
        [root] = one.spans()
        assert row["trace_id"] == f"{root.context.trace_id:032x}" and row["span_id"] == f"{root.context.span_id:016x}"
        assert one.engine.store.get_execution(row["id"])["trace_id"] == row["trace_id"]
        [final] = watch.writes
        assert "state" in final.split(" where ")[0]

        # a quick task step writes it with its own end (not yet on the row while it runs; the
        # execution's final write does not carry it again)
        watch.writes.clear()
        SeeTrace.seen.clear()
        flow = "id: quick_task\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n  - {id: b, type: test.see_trace}\n"
        row = await one.engine.execute(one.flow(flow))
        root = one.spans()[-1]
        assert row["state"] == "SUCCESS" and SeeTrace.seen == [None]
        assert row["trace_id"] == f"{root.context.trace_id:032x}" and row["span_id"] == f"{root.context.span_id:016x}"
        [step_end] = watch.writes  # the step's end carried it; the final write did not
        assert "state" not in step_end.split(" where ")[0]

        # a step that runs longer (and may crash midway) finds it on the row with its RUNNING row
        SeeTrace.seen.clear()
        flow = f"id: slow\ntasks:\n  - {{id: b, type: test.see_trace, wait: {START_DELAY * 4}}}\n"
        row = await one.engine.execute(one.flow(flow))
        assert row["state"] == "SUCCESS" and SeeTrace.seen == [row["trace_id"]] and row["trace_id"]
    finally:
        watch.close()


class Broken(Middleware):
    """A run that ends without the engine's final write of the row."""

    async def execution(self, run: Any, call: Any) -> Any:
        raise RuntimeError("the run broke")


@sync
async def test_a_run_that_ends_without_its_final_write_still_stores_its_trace_context(traced, default_mode) -> None:
    one = traced()
    one.engine.middleware.append(Broken())  # inside the tracing middleware
    flow = one.flow("id: broken\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n")
    execution_id = await one.engine.start(flow, enqueue=False)
    ended = await one.engine.run(execution_id)  # the engine's own failure ends it FAILED (EngineError)
    assert ended["state"] == "FAILED" and ended["error"]["type"] == "EngineError"
    [root] = one.spans()
    assert one.engine.store.get_execution(execution_id)["trace_id"] == f"{root.context.trace_id:032x}"
    assert root.attributes[A.EXECUTION_STATE] == "FAILED" and root.events[0].name == "exception"
