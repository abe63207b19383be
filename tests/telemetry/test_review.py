"""HTTP client spans, the viewer API, the terminal waterfall, setup switches, logs and metrics."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from hub.core import attributes as A
from hub.telemetry import setup, spanstore
from hub.telemetry.logs import TraceContextFilter
from hub.telemetry.middleware import install
from hub.telemetry.processors import HubTracesOnly, RedactingProcessor
from tests.telemetry.conftest import SECRET, every_string, named, sync, tree


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@sync
async def test_http_request_is_a_tool_span_with_a_redacted_client_span(traced, server, monkeypatch) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
    one = traced()
    setup.instrument_httpx(one.provider)
    try:
        flow = f"""
id: fetch
tasks:
  - id: company
    type: http.request
    url: "{server}/companies?key={{{{ secret('API_TOKEN') }}}}"
"""
        row = await one.engine.execute(one.flow(flow))
    finally:
        HTTPXClientInstrumentor().uninstrument()
    assert row["state"] == "SUCCESS", row["error"]
    spans = one.spans()
    assert tree(spans) == [("execution default.fetch", [("execute_tool http.request", [("GET", [])])])]
    client = named(spans, "GET")[0]
    assert client.kind.name == "CLIENT"
    for span in spans:
        for text in every_string(span):
            assert SECRET not in text, (span.name, text)


@sync
async def test_viewer_api_and_terminal_waterfall(traced, tmp_path, monkeypatch) -> None:
    from hub.api import traces
    from hub.telemetry.cli import trace as trace_command

    one = traced()
    ok = await one.engine.execute(one.flow("id: fine\nnamespace: t\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n"))
    bad = await one.engine.execute(one.flow("id: broken\nnamespace: t\ntasks:\n  - {id: b, type: fail, message: nope}\n"))
    app = FastAPI()
    app.state.store = one.engine.store
    app.include_router(traces.router, prefix="/v1")
    for guard in traces._guards:
        app.dependency_overrides[guard.dependency] = lambda: None
    http = TestClient(app)

    body = http.get(f"/v1/executions/{ok['id']}/trace").json()
    assert body["flow"] == "t.fine" and body["state"] == "SUCCESS" and body["span_count"] == 2
    [root] = body["spans"]
    assert root["name"] == "execution t.fine" and root["attributes"][A.EXECUTION_STATE] == "SUCCESS"
    assert [c["name"] for c in root["children"]] == ["step a"]
    assert root["children"][0]["offset_ms"] >= 0
    assert http.get("/v1/executions/nope/trace").status_code == 404
    assert http.get(f"/v1/executions/{ok['id']}/usage").json()["calls"] == 0

    found = http.get("/v1/traces", params={"errors": "true"}).json()["traces"]
    assert [t["execution_id"] for t in found] == [bad["id"]]
    assert {t["flow"] for t in http.get("/v1/traces").json()["traces"]} == {"t.fine", "t.broken"}
    assert [t["state"] for t in http.get("/v1/traces", params={"flow": "t.fine"}).json()["traces"]] == ["SUCCESS"]
    assert http.get("/v1/traces", params={"state": "FAILED", "min_duration_ms": 0}).json()["count"] == 1
    assert http.get("/v1/traces", params={"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    assert http.get("/v1/traces", params={"since": "yesterday"}).status_code == 400

    monkeypatch.setenv("HUB_HOME", str(tmp_path))
    result = CliRunner().invoke(trace_command, [bad["id"][:12]])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(f"execution {bad['id']}  t.broken  FAILED")
    assert lines[1].startswith("execution t.broken") and "█" in lines[1]
    assert lines[2].startswith("  step b") and "error: nope" in lines[2]


def test_switches_and_exporters_from_the_environment(monkeypatch, tmp_path) -> None:
    from hub.testing import make_engine

    monkeypatch.setenv("HUB_TRACING", "off")
    engine = make_engine(home=tmp_path)
    assert setup.install(engine) is None and engine.middleware == []
    monkeypatch.delenv("HUB_TRACING")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not setup.tracing_enabled()
    monkeypatch.delenv("OTEL_SDK_DISABLED")

    def stored(provider) -> int:  # type: ignore[no-untyped-def]  # the database processors it has
        return sum(isinstance(p, RedactingProcessor) and isinstance(p.inner, HubTracesOnly)
                   for p in provider._active_span_processor._span_processors)

    monkeypatch.setenv("HUB_TRACE_STORE", "off")
    assert not setup.trace_store_enabled() and stored(setup.build_tracer_provider(store=engine.store)) == 0
    monkeypatch.delenv("HUB_TRACE_STORE")
    assert setup.trace_store_enabled() and stored(setup.build_tracer_provider(store=engine.store)) == 1

    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    assert setup.span_exporters_from_env() == []  # the embedded hub needs no collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    [http] = setup.span_exporters_from_env()
    assert type(http).__module__.endswith("proto.http.trace_exporter")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    grpc, console = setup.span_exporters_from_env()
    assert type(grpc).__module__.endswith("proto.grpc.trace_exporter")
    assert type(console).__name__ == "ConsoleSpanExporter"
    for exporter in (http, grpc, console):
        exporter.shutdown()
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert setup.span_exporters_from_env() == []


@sync
async def test_sampled_out_executions_keep_one_trace_id_and_stay_unsampled(traced, tmp_path) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased

    from hub.telemetry.setup import build_tracer_provider

    one = traced()
    provider = build_tracer_provider([one.exporter], simple=True, sampler=ParentBased(ALWAYS_OFF))
    one.engine.middleware.clear()
    install(one.engine, provider)
    row = await one.engine.execute(one.flow("id: quiet\ntasks:\n  - {id: g, type: test_gate}\n"))
    assert row["state"] == "PAUSED" and row["trace_id"] and row["span_id"] is None
    await one.engine.resume(row["id"])
    await one.engine.queue.drain()
    assert one.engine.store.get_execution(row["id"])["trace_id"] == row["trace_id"]
    assert one.spans() == []


@sync
async def test_log_records_and_metrics_carry_the_execution(traced, caplog) -> None:
    one = traced()
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    one.engine.middleware.clear()
    install(one.engine, one.provider, meters)
    seen: list[tuple[str, str]] = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.trace_id, record.span_id))  # type: ignore[attr-defined]

    handler = Grab()
    handler.addFilter(TraceContextFilter())
    logger = logging.getLogger("tests.telemetry.grab")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        tracer = trace.get_tracer("t", tracer_provider=one.provider)
        with tracer.start_as_current_span("outer") as span:
            logger.info("inside")
        logger.info("outside")
    finally:
        logger.removeHandler(handler)
    ctx = span.get_span_context()
    assert seen == [(spanstore.trace_hex(ctx.trace_id), spanstore.span_hex(ctx.span_id)), ("", "")]

    await one.engine.execute(one.flow("id: counted\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n  - id: ask\n    type: llm.test_chat\n    question: hi\n"))
    data = reader.get_metrics_data()
    points = {
        m.name: list(m.data.data_points)
        for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics
    }
    [executions] = points[A.METRIC_EXECUTIONS]
    assert dict(executions.attributes) == {A.FLOW: "default.counted", A.EXECUTION_STATE: "SUCCESS"}
    assert executions.value == 1
    assert {dict(p.attributes)[A.STEP_TYPE] for p in points[A.METRIC_STEP_DURATION]} == {"set", "llm.test_chat"}
    tokens = {dict(p.attributes)[A.GEN_AI_TOKEN_TYPE]: p.sum for p in points[A.METRIC_TOKEN_USAGE]}
    assert tokens == {"input": 32, "output": 8}
    assert sum(p.count for p in points[A.METRIC_OPERATION_DURATION]) == 2
    assert points[A.METRIC_LLM_COST][0].value == pytest.approx(0.002)
    assert A.METRIC_QUEUE_WAIT in points


def test_retention_purges_old_spans(tmp_path) -> None:
    from hub.store.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    from sqlalchemy import insert

    with store.engine.begin() as conn:
        for start in (1_000.0, 2_000_000_000.0):
            conn.execute(insert(spanstore.SPANS).values(
                trace_id="a" * 32, span_id=f"{int(start):016x}"[-16:], name="x", start_time=start, end_time=start,
                duration_ms=0.0, attributes={}, events=[], links=[],
            ))
    assert spanstore.purge(store.engine, retention_days=7, now=2_000_000_100.0) == 1
    assert len(spanstore.trace_spans(store.engine, "a" * 32)) == 1
    store.close()


def test_the_exporter_stores_every_part_of_a_span(tmp_path) -> None:
    """A span's row as the viewer reads it: ids, parent, times, status, attributes (tuples as
    lists, NaN as null: PostgreSQL's json refuses NaN), events and links; every column of the
    table is written."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Link, Status, StatusCode

    from hub.store.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    assert set(spanstore._COLUMNS) == {c.name for c in spanstore.SPANS.columns} - {"id"}
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("parent") as parent:
        child = tracer.start_span("child", attributes={A.EXECUTION_ID: "e1", "n": 2, "tags": ("a", "b"),
                                                             "ratio": float("nan")},
                                  links=[Link(parent.get_span_context(), {"why": "x"})])
        child.add_event("saw", {"k": (1, 2)})
        child.set_status(Status(StatusCode.ERROR, "bad"))
        child.end()
    exporter = spanstore.DatabaseSpanExporter(store.engine, retention_days=None)
    exporter.export([child, parent])  # type: ignore[list-item]
    trace_id = spanstore.trace_hex(child.get_span_context().trace_id)
    rows = {row["name"]: row for row in spanstore.trace_spans(store.engine, trace_id)}
    row, top = rows["child"], rows["parent"]
    assert row["span_id"] == spanstore.span_hex(child.get_span_context().span_id)
    assert row["parent_span_id"] == top["span_id"] and top["parent_span_id"] is None
    assert row["execution_id"] == "e1" and row["kind"] == "INTERNAL" and row["service"]
    assert row["status"] == "ERROR" and row["status_message"] == "bad"
    assert row["attributes"] == {A.EXECUTION_ID: "e1", "n": 2, "tags": ["a", "b"], "ratio": None}
    assert [(e["name"], e["attributes"]) for e in row["events"]] == [("saw", {"k": [1, 2]})]
    assert row["links"] == [{"trace_id": trace_id, "span_id": top["span_id"], "attributes": {"why": "x"}}]
    assert row["end_time"] >= row["start_time"] and row["duration_ms"] >= 0
    assert top["attributes"] == {} and top["events"] == [] and top["links"] == []
    store.close()


@sync
async def test_the_viewer_waits_for_the_spans_of_an_execution_that_just_ended(tmp_path) -> None:
    """Spans reach the database in batches after the execution ends; asked at once, the viewer
    waits for them (bounded) instead of answering an empty trace."""
    from opentelemetry.sdk.trace import TracerProvider

    from hub.store.store import Store
    from hub.telemetry.review import execution_trace
    from hub.testing import make_engine

    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    engine = make_engine(store, home=tmp_path)
    provider = TracerProvider()
    provider.add_span_processor(setup.database_processor(store, delay_ms=3000))  # a slow batch
    install(engine, provider)
    flow = engine.catalog.loader.load_text("id: quick\nnamespace: t\ntasks:\n  - {id: a, type: set, values: {x: 1}}\n")
    done = await engine.execute(flow)

    early = execution_trace(store, done["id"])  # no wait: what `hub trace` printed before
    assert early["span_count"] == 0 and early["complete"] is False
    waited = execution_trace(store, done["id"], wait=30)
    assert waited["complete"] is True and waited["span_count"] == 1
    assert waited["spans"][0]["name"] == "execution t.quick"

    old = store.create_execution(namespace="t", flow_id="quick", revision=1, inputs={}, state="SUCCESS")
    store.update_execution(old, ended_at=1.0, trace_id="b" * 32, span_id="c" * 16)  # ended long ago: no wait
    gone = execution_trace(store, old, wait=30)
    assert gone["span_count"] == 0 and gone["complete"] is False
    provider.shutdown()
    store.close()


def test_a_process_that_never_imports_httpx_does_not_load_it_for_its_client_spans(tmp_path) -> None:
    """``hub worker``/``hub serve`` ask for httpx client spans at start-up; httpx (its CLI's
    dependencies included) and the instrumentation load only once something imports httpx, and
    its requests are instrumented from then on."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from hub.service.runtime import build_engine\n"
        "from hub.settings import HubSettings\n"
        "build_engine(HubSettings(home=sys.argv[1]))\n"
        "print('httpx' in sys.modules)\n"
        "import httpx\n"
        "from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor\n"
        "print(HTTPXClientInstrumentor().is_instrumented_by_opentelemetry)\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HUB_TRACING": "on"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]
