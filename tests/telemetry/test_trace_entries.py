"""What the span processors keep per trace goes when the trace is done with in this process: a
worker must not grow with every execution it ran (issue 19 item 7), and redaction must not end early."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from hub.flow.secrets import Redactor
from hub.telemetry import processors
from hub.telemetry.processors import (
    HubTracesOnly,
    RedactingProcessor,
    forget_redactor,
    redactor_for,
    register_redactor,
)
from hub.telemetry.review import execution_trace
from hub.telemetry.tables import SPANS
from tests.telemetry.conftest import SECRET, every_string, sync

FLOW = """
id: entries
namespace: tests
tasks:
  - {id: say, type: log, message: "hello {{ secret('API_TOKEN') }}"}
  - id: fan
    type: parallel
    tasks:
      - {id: a, type: set, values: {n: 1}}
      - {id: b, type: fail, message: "no {{ secret('API_TOKEN') }}", allow_failure: true}
"""


def stores(provider: Any) -> list[HubTracesOnly]:
    return [p.inner for p in provider._active_span_processor._span_processors
            if isinstance(p, RedactingProcessor) and isinstance(p.inner, HubTracesOnly)]


@sync
async def test_an_ended_execution_leaves_no_entry_and_its_spans_were_redacted_and_stored(traced) -> None:
    one = traced()
    [database] = stores(one.provider)
    row = await one.engine.execute(one.flow(FLOW))
    spans = one.spans()
    trace_id = spans[0].context.trace_id
    assert processors._redactors.get(trace_id) is None
    assert redactor_for(trace_id) is not None  # retired, not dropped: the run read a secret
    assert len(database._traces) == 0
    assert spans and all(SECRET not in text for span in spans for text in every_string(span))
    with one.engine.store.engine.connect() as conn:  # the database exporter had them all
        assert conn.execute(select(func.count()).select_from(SPANS)).scalar() == len(spans)
    assert execution_trace(one.engine.store, row["id"])["spans"]


def test_runs_of_one_trace_at_once_each_redact_its_spans_until_it_ends() -> None:
    """Subflows of a fan-out run in one trace at the same time: a span goes through every
    running one's redactor, and one that ends leaves the others in place."""
    first, second = Redactor(), Redactor()
    first.add("alpha-secret")
    second.add("beta-secret")
    trace_id = 0xABC
    register_redactor(trace_id, first)
    register_redactor(trace_id, second)
    try:
        both = redactor_for(trace_id)
        assert both is not None and both("alpha-secret beta-secret") == "****** ******"
        forget_redactor(trace_id, second)
        assert processors._redactors.get(trace_id) == (first,)
    finally:
        forget_redactor(trace_id, first)
    assert processors._redactors.get(trace_id) is None
    late = redactor_for(trace_id)  # a span of the trace that ends after both runs
    assert late is not None and late("alpha-secret beta-secret") == "****** ******"


def test_a_span_that_ends_after_its_run_is_still_redacted() -> None:
    """The API's server span around an enrichment, or a span of a sync step's thread that
    outlived its timeout, ends after the execution's run has forgotten its redactor."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(RedactingProcessor(SimpleSpanProcessor(exporter)))
    span = provider.get_tracer("late").start_span("late")
    redactor = Redactor()
    redactor.add("gamma-secret")
    trace_id = span.get_span_context().trace_id
    register_redactor(trace_id, redactor)
    forget_redactor(trace_id, redactor)  # the run is over, the span not yet
    span.set_attribute("url", "https://x.test/?token=gamma-secret")
    span.end()
    [stored] = exporter.get_finished_spans()
    assert stored.attributes["url"] == "https://x.test/?token=******"
    assert processors._redactors.get(trace_id) is None
    provider.shutdown()


def test_a_run_that_read_no_secret_costs_its_spans_no_copy() -> None:
    quiet = Redactor()
    register_redactor(0xDEF, quiet)
    try:
        assert redactor_for(0xDEF) is None
    finally:
        forget_redactor(0xDEF, quiet)
    assert redactor_for(0xDEF) is None and processors._retired.get(0xDEF) is None  # nothing kept
