"""GET /metrics: Prometheus text with executions by state, queue depth, step durations, LLM tokens and cost."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from hub.engine.runner import Engine
from hub.llm.records import CallLog
from hub.store.store import Store
from tests.service.conftest import assert_error, bearer, deploy, make_client, wait_for


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def test_metrics_count_executions_steps_queue_and_model_calls(engine: Engine) -> None:
    with make_client(engine, auth="open") as client:
        deploy(client)
        done = client.post("/v1/flows/demo/hello/executions", json={"inputs": {"name": "ana"}}).json()
        wait_for(client, done["id"])
        engine.store.insert_executions([  # waiting work, as another process would have left it
            Store.execution_row(namespace="demo", flow_id="hello", revision=1, inputs={}, state=state)
            for state in ("QUEUED", "QUEUED", "PAUSED")
        ])
        calls = CallLog(engine.store.engine)
        for tokens in (100, 50):
            calls.record(execution_id=done["id"], path="x", model="fast", status="ok", input_tokens=tokens, output_tokens=10,
                         cost=0.25)

        got = samples(client.get("/metrics").text)
        assert got[("hub_executions_total", (("flow", "demo.hello"), ("state", "SUCCESS")))] == 1
        assert got[("hub_step_duration_seconds_count", (("state", "SUCCESS"), ("type", "set")))] == 1
        assert got[("hub_step_duration_seconds_count", (("state", "SUCCESS"), ("type", "log")))] == 1
        assert got[("hub_executions_active", (("state", "QUEUED"),))] == 2
        assert got[("hub_executions_active", (("state", "PAUSED"),))] == 1
        assert got[("hub_queue_depth", ())] == 2
        assert got[("hub_llm_tokens_total", (("model", "fast"), ("type", "input")))] == 150
        assert got[("hub_llm_cost_usd_total", (("model", "fast"),))] == 0.5

        calls.record(execution_id=done["id"], path="y", model="fast", status="ok", input_tokens=7, output_tokens=1, cost=0.0)
        again = samples(client.get("/metrics").text)  # counters go on from where they were, each call once
        assert again[("hub_llm_tokens_total", (("model", "fast"), ("type", "input")))] == 157
        assert again[("hub_llm_tokens_total", (("model", "fast"), ("type", "output")))] == 21


def test_metrics_need_a_key_unless_made_public(engine: Engine, keys: dict[str, str]) -> None:
    from hub.api.context import ApiSettings

    with make_client(engine, auth="auto") as secured:
        assert_error(secured.get("/metrics"), 401, "Unauthorized")
        assert secured.get("/metrics", headers=bearer(keys["read"])).status_code == 200
    with make_client(engine, auth="auto", settings=ApiSettings(metrics_public=True)) as public:
        assert "hub_queue_depth" in public.get("/metrics").text


def test_a_worker_serves_the_metrics_of_what_it_runs(engine: Engine) -> None:
    """``hub worker --metrics-port``: its own executions and step durations, on a port of its own."""
    import asyncio
    import socket

    import httpx

    from hub.flow.loader import load_text
    from hub.telemetry.prometheus import HubMetrics, serve_metrics
    from tests.service.conftest import HELLO

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server, thread = serve_metrics(HubMetrics(engine).attach(), port, host="127.0.0.1")
    try:
        flow = load_text(HELLO)
        engine.deploy(flow)
        asyncio.run(engine.execute(flow))
        got = samples(httpx.get(f"http://127.0.0.1:{port}/metrics").text)
    finally:
        server.shutdown()
        thread.join(5)
    assert got[("hub_executions_total", (("flow", "demo.hello"), ("state", "SUCCESS")))] == 1
    assert got[("hub_step_duration_seconds_count", (("state", "SUCCESS"), ("type", "set")))] == 1
    assert not any(name == "hub_queue_depth" for name, _ in got)  # the database's gauges are the API's


def test_the_expression_cache_counts_its_hits_and_misses(engine: Engine) -> None:
    """A render that finds its expression compiled is a hit, a first render a miss (a compilation)."""
    import uuid

    def cache() -> dict[str, float]:
        got = samples(client.get("/metrics").text)
        return {name.removeprefix("hub_expression_cache_"): value
                for (name, _), value in got.items() if name.startswith("hub_expression_cache_")}

    with make_client(engine, auth="open") as client:
        before = cache()
        source = "{{ " + str(uuid.uuid4().int) + " + 1 }}"  # compiled by no one before
        for _ in range(3):
            engine.expr.render(source, {})
        after = cache()
    assert after["misses_total"] - before["misses_total"] == 1
    assert after["hits_total"] - before["hits_total"] >= 2  # (a scrape renders nothing itself)
    assert after["capacity"] == engine.settings.expression_cache_size
    assert 0 < after["hit_ratio"] <= 1
    assert after["entries"] >= 1
