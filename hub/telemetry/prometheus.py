"""Prometheus metrics of a hub process: ``GET /metrics`` on ``hub serve``, ``--metrics-port`` on ``hub worker``.

What is measured, and where it comes from:

- ``hub_executions_active{state}`` (gauge): executions QUEUED, RUNNING, PAUSED or KILLING now, counted in
  the database at each scrape (every process of the deployment; one index range per state);
- ``hub_queue_depth`` (gauge): executions waiting to run (QUEUED, the database); with arq,
  ``hub_queue_jobs`` (gauge) is the Redis queue's length (jobs due or deferred);
- ``hub_executions_total{flow,state}`` (counter): runs that ended (or paused) in this process;
- ``hub_step_duration_seconds{type,state}`` (histogram): step attempts that ran in this process;
- ``hub_llm_tokens_total{model,type}`` and ``hub_llm_cost_usd_total{model}`` (counters): every
  model call recorded in the database by any process (read incrementally, by record id);
- ``hub_expression_cache_hits_total``, ``..._misses_total``, ``..._evictions_total`` (counters),
  ``hub_expression_cache_entries``, ``..._capacity`` and ``..._hit_ratio`` (gauges): the process's
  compiled expressions (``HUB_EXPRESSION_CACHE_SIZE``); a miss is a compilation (~0.5 ms).

Each process has its own registry (no global state: several engines in one test process).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from hub.core.host import MODEL_USAGE, lookup
from hub.store.lists import EXECUTIONS

ACTIVE_STATES = ("QUEUED", "RUNNING", "PAUSED", "KILLING")
ENDED_STATES = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "PAUSED"}
STEP_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class HubMetrics:
    """The instruments of one process, fed by its engine's events and read from its store."""

    def __init__(self, engine: Any):
        self.engine = engine
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ended = Counter("hub_executions", "Execution runs that ended or paused in this process.",
                             ["flow", "state"], registry=r)
        self.steps = Histogram("hub_step_duration_seconds", "Duration of step attempts run in this process.",
                               ["type", "state"], buckets=STEP_BUCKETS, registry=r)
        self._last_call = 0
        self._flows: dict[str, str] = {}
        self.active: Gauge | None = None
        r.register(ExpressionCacheCollector(engine.expr.cache))

    def with_database(self) -> HubMetrics:
        """Add the deployment-wide gauges and model-call counters read from the store at each
        :meth:`collect` (the API server's; a worker reports only what it runs)."""
        r = self.registry
        self.active = Gauge("hub_executions_active", "Executions in a non-final state now (database).",
                            ["state"], registry=r)
        self.queue_depth = Gauge("hub_queue_depth", "Executions waiting to run (QUEUED, database).", registry=r)
        self.queue_jobs = Gauge("hub_queue_jobs", "Jobs on the arq queue in Redis (due or deferred).", registry=r)
        self.tokens = Counter("hub_llm_tokens", "Model call tokens (every process, database).",
                              ["model", "type"], registry=r)
        self.cost = Counter("hub_llm_cost_usd", "Model call cost in USD (every process, database).",
                            ["model"], registry=r)
        return self

    def attach(self) -> HubMetrics:
        """Listen to the engine's events (once)."""
        if self.on_event not in self.engine.listeners:
            self.engine.listeners.append(self.on_event)
        return self

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "step":
            if event.get("duration") is not None and event.get("state") != "RUNNING":
                self.steps.labels(str(event["type"]), str(event["state"])).observe(float(event["duration"]))
        elif kind == "execution":
            flow = event.get("flow") or self._flows.get(event["execution_id"], "")
            if event.get("state") == "RUNNING" and flow:
                self._flows[event["execution_id"]] = flow
            elif event.get("state") in ENDED_STATES:
                self._flows.pop(event["execution_id"], None)
                self.ended.labels(flow, str(event["state"])).inc()

    def _read_store(self) -> None:
        """The database's part: active executions by state, and model calls since the last scrape."""
        store = self.engine.store
        assert self.active is not None
        with store.auto.connect() as conn:
            for state in ACTIVE_STATES:
                count = conn.execute(select(func.count()).where(EXECUTIONS.c.state == state)).scalar_one()
                self.active.labels(state).set(count)
                if state == "QUEUED":
                    self.queue_depth.set(count)
        self._read_calls()

    def _read_calls(self) -> None:
        """Model calls since the last scrape, as the LLM feature reads them (``MODEL_USAGE``)."""
        try:
            rows = lookup(MODEL_USAGE)(self.engine.store, self._last_call)
        except Exception:  # no llm_calls table yet (no model was ever called), or no LLM feature
            return
        for model, last, input_tokens, output_tokens, cost in rows:
            name = str(model or "unknown")
            self.tokens.labels(name, "input").inc(int(input_tokens or 0))
            self.tokens.labels(name, "output").inc(int(output_tokens or 0))
            self.cost.labels(name).inc(float(cost or 0.0))
            self._last_call = max(self._last_call, int(last))

    async def collect(self) -> bytes:
        """The text exposition of every metric, the database's read at this moment."""
        if self.active is None:
            return generate_latest(self.registry)
        if self.engine.store.is_sqlite:
            self._read_store()
        else:
            await asyncio.to_thread(self._read_store)
        depth = getattr(self.engine.queue, "depth", None)
        if depth is not None:
            with contextlib.suppress(Exception):  # Redis away: the gauge keeps its last value; /ready says so
                self.queue_jobs.set(await asyncio.wait_for(depth(), 2.0))
        return generate_latest(self.registry)


class ExpressionCacheCollector(Collector):
    """The counters of an expression cache (:class:`hub.flow.lru.Lru`), read at each scrape."""

    def __init__(self, cache: Any):
        self.cache = cache

    def collect(self) -> Iterator[Metric]:
        cache = self.cache
        for name, value, text in (
            ("hits", cache.hits, "Renders that found their expression compiled."),
            ("misses", cache.misses, "Expressions compiled (not in the cache)."),
            ("evictions", cache.evictions, "Compiled expressions dropped, least recently used first."),
        ):
            yield CounterMetricFamily(f"hub_expression_cache_{name}", text, value=value)
        yield GaugeMetricFamily("hub_expression_cache_entries", "Compiled expressions kept now.", value=len(cache))
        yield GaugeMetricFamily("hub_expression_cache_capacity", "HUB_EXPRESSION_CACHE_SIZE.", value=cache.capacity)
        rate = cache.hit_rate()
        yield GaugeMetricFamily("hub_expression_cache_hit_ratio", "Hits over lookups since the process started.",
                                value=rate if rate is not None else float("nan"))


def serve_metrics(metrics: HubMetrics, port: int, host: str = "0.0.0.0") -> Any:  # noqa: S104 - scraped from outside
    """Answer ``GET /metrics`` on ``port`` from a thread (``hub worker --metrics-port``): the
    process's own instruments; the database gauges are the API's to report."""
    from prometheus_client import start_http_server

    return start_http_server(port, addr=host, registry=metrics.registry)
