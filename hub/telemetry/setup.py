"""Configure OpenTelemetry for the hub from the standard ``OTEL_*`` environment.

    from hub.telemetry.setup import install
    install(engine)          # tracing middleware + (once per process) providers and exporters

What is read:

- ``HUB_TRACING=off`` or ``OTEL_SDK_DISABLED=true``: no tracing at all (the middleware is not added).
- ``OTEL_TRACES_EXPORTER``: comma list of ``otlp``, ``console``, ``none``. Default: ``otlp`` when an
  ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` is set, otherwise none (the embedded hub needs no
  collector). ``OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL``: ``http/protobuf`` (default) or ``grpc``;
  endpoint, headers, timeout and compression are read by the OTLP exporters themselves.
- ``OTEL_TRACES_SAMPLER`` / ``OTEL_TRACES_SAMPLER_ARG``, ``OTEL_SERVICE_NAME`` (default ``hub``),
  ``OTEL_RESOURCE_ATTRIBUTES``: read by the SDK.
- ``OTEL_METRICS_EXPORTER``: ``otlp``, ``console`` or ``none`` (same default rule as traces).
- ``HUB_TRACE_STORE=off``: do not keep spans in the hub database (the trace viewer then has nothing).
  ``HUB_TRACE_RETENTION_DAYS`` (default 7): how long the database keeps them.

If the process already has an SDK tracer provider (``opentelemetry-instrument``, your own setup),
the hub adds its database exporter to it and leaves the rest alone.
"""

from __future__ import annotations

import logging
import os
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)

from hub.core import attributes as A
from hub.core.imports import when_imported
from hub.telemetry.logs import install_log_correlation
from hub.telemetry.processors import HubTracesOnly, RedactingProcessor
from hub.telemetry.spanstore import DatabaseSpanExporter

log = logging.getLogger(__name__)

_configured: TracerProvider | None = None
_db_engines: set[int] = set()


def _switched_off(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in ("off", "false", "0", "no")


def tracing_enabled() -> bool:
    """False when ``HUB_TRACING`` is off/false/0/no or ``OTEL_SDK_DISABLED`` is true."""
    if _switched_off(A.ENV_HUB_TRACING):
        return False
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


def trace_store_enabled() -> bool:
    """False when ``HUB_TRACE_STORE`` is off/false/0/no: spans are not kept in the hub database."""
    return not _switched_off(A.ENV_TRACE_STORE)


def retention_days() -> float:
    raw = os.environ.get(A.ENV_RETENTION_DAYS, "7")
    try:
        return float(raw)
    except ValueError:
        log.warning("%s=%r is not a number; keeping spans for 7 days", A.ENV_RETENTION_DAYS, raw)
        return 7.0


def _otlp_configured(signal: str) -> bool:
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"))


def _names(variable: str, signal: str) -> list[str]:
    raw = os.environ.get(variable)
    if raw is None:
        return ["otlp"] if _otlp_configured(signal) else []
    return [n.strip().lower() for n in raw.split(",") if n.strip() and n.strip().lower() != "none"]


def _protocol(signal: str) -> str:
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip().lower()


def span_exporters_from_env() -> list[SpanExporter]:
    """The exporters ``OTEL_TRACES_EXPORTER`` asks for."""
    out: list[SpanExporter] = []
    for name in _names("OTEL_TRACES_EXPORTER", "TRACES"):
        if name == "console":
            out.append(ConsoleSpanExporter())
        elif name == "otlp":
            if _protocol("TRACES") == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

                out.append(Grpc())
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

                out.append(Http())
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported by the hub (use otlp, console or none)", name)
    return out


def _metric_readers() -> list[Any]:
    names = _names("OTEL_METRICS_EXPORTER", "METRICS")
    if not names:
        return []  # the metrics SDK (~1 MiB) is not imported by a process that exports none
    from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader

    readers: list[Any] = []
    for name in names:
        if name == "console":
            readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
        elif name == "otlp":
            if _protocol("METRICS") == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as Grpc

                readers.append(PeriodicExportingMetricReader(Grpc()))
            else:
                from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as Http

                readers.append(PeriodicExportingMetricReader(Http()))
        else:
            log.warning("OTEL_METRICS_EXPORTER=%s is not supported by the hub (use otlp, console or none)", name)
    return readers


def resource() -> Resource:
    attrs = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": "hub"}
    return Resource.create(attrs)


STORE_DELAY_MS = 500
"""How often the database processor writes what it holds: ``hub trace`` right after an execution
ends finds its spans within this (OpenTelemetry's 5 s default left the viewer empty meanwhile);
``OTEL_BSP_SCHEDULE_DELAY`` overrides it."""


def database_processor(store: Any, *, simple: bool = False, delay_ms: float | None = None) -> SpanProcessor:
    """The processor that keeps execution traces in the hub database (batched, redacted)."""
    exporter = DatabaseSpanExporter(store.engine, retention_days())
    if simple:
        inner: SpanProcessor = SimpleSpanProcessor(exporter)
    else:
        if delay_ms is None and not os.environ.get("OTEL_BSP_SCHEDULE_DELAY"):
            delay_ms = STORE_DELAY_MS
        inner = BatchSpanProcessor(exporter, schedule_delay_millis=delay_ms)
    return RedactingProcessor(HubTracesOnly(inner))


def build_tracer_provider(
    exporters: Sequence[SpanExporter] = (),
    *,
    store: Any = None,
    simple: bool = False,
    sampler: Any = None,
) -> TracerProvider:
    """A tracer provider with the hub's processors: every exporter behind redaction.

    ``simple=True`` exports each span as it ends (tests); the default batches off the event loop.
    """
    provider = TracerProvider(sampler=sampler, resource=resource())
    for exporter in exporters:
        inner = SimpleSpanProcessor(exporter) if simple else BatchSpanProcessor(exporter)
        provider.add_span_processor(RedactingProcessor(inner))
    if store is not None and trace_store_enabled():
        provider.add_span_processor(database_processor(store, simple=simple))
    return provider


def configure(store: Any = None, *, http_spans: bool = True) -> TracerProvider | None:
    """Set up the process-wide providers once (later calls only add a new store's exporter).

    ``http_spans=False`` leaves httpx uninstrumented (``hub run`` by default: importing the
    instrumentation is most of what tracing adds to a short process)."""
    global _configured
    if not tracing_enabled():
        return None
    if _configured is None:
        existing = trace.get_tracer_provider()
        if isinstance(existing, TracerProvider):
            _configured = existing  # someone configured the SDK already: add to it
        else:
            _configured = build_tracer_provider(span_exporters_from_env())
            trace.set_tracer_provider(_configured)
            readers = _metric_readers()
            if readers:
                from opentelemetry.sdk.metrics import MeterProvider

                metrics.set_meter_provider(MeterProvider(metric_readers=readers, resource=resource()))
        install_log_correlation()
        if http_spans:
            instrument_httpx_when_imported(_configured)
    if store is not None and id(store.engine) not in _db_engines and trace_store_enabled():
        _db_engines.add(id(store.engine))
        _configured.add_span_processor(database_processor(store))
    return _configured


def install(engine: Any, tracer_provider: Any = None, meter_provider: Any = None, *, http_spans: bool = True) -> Any:
    """Trace ``engine``'s executions; returns the middleware, or None when tracing is off.

    Without ``tracer_provider`` the process-wide one is configured from the environment (with the
    database exporter for ``engine.store``).
    """
    from hub.telemetry.middleware import install as add_middleware

    if not tracing_enabled():
        return None
    if tracer_provider is None:
        tracer_provider = configure(engine.store, http_spans=http_spans)
    return add_middleware(engine, tracer_provider, meter_provider)


def instrument_httpx(tracer_provider: Any = None) -> bool:
    """Client spans for every httpx request (connectors, http.request, litellm)."""
    try:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    except ImportError:  # pragma: no cover - the dependency is declared
        return False
    instrumentor = HTTPXClientInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        if tracer_provider is None:
            return True
        instrumentor.uninstrument()  # re-bind to the provider asked for (tests, embedded setups)
    instrumentor.instrument(tracer_provider=tracer_provider)
    return True


def instrument_httpx_when_imported(tracer_provider: Any = None) -> None:
    """:func:`instrument_httpx` once httpx is imported (at once if it is already): a process
    whose steps never make an HTTP request (many workers) does not load httpx, its CLI's
    dependencies and the instrumentation (~9 MiB of a worker's memory)."""
    when_imported("httpx", lambda _module: instrument_httpx(tracer_provider))


def untraced_urls(root_path: str = "") -> str:
    """The probes' URLs (``/health``, ``/healthz``, ``/ready``, ``/metrics``, under the app's
    ``root_path``, with or without a trailing slash), which get no server span. The
    instrumentation searches each request's URL (scheme, host and path) for this pattern anywhere
    in it, so it is anchored: a bare ``health`` would also leave untraced every call whose path
    merely contains the word (an enrichment of a flow called ``health-check``)."""
    prefix = re.escape(root_path.rstrip("/"))
    return rf"^[a-z]+://[^/]*{prefix}/(health|healthz|ready|metrics)/?$"


def instrument_app(app: Any, tracer_provider: Any = None) -> Any:
    """Server spans for a FastAPI app (continues an incoming ``traceparent``). Returns ``app``."""
    if not tracing_enabled():
        return app
    from opentelemetry.instrumentation import fastapi as otel_fastapi

    if not isinstance(otel_fastapi._get_default_span_details, RouteNames):  # read when the app starts
        otel_fastapi._get_default_span_details = RouteNames(otel_fastapi._get_default_span_details)
    otel_fastapi.FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider or configure(),
        excluded_urls=untraced_urls(getattr(app, "root_path", "") or ""),
        # one server span per request; a span per ASGI receive/send message costs more than the
        # request itself on the enrichment path and tells nothing
        exclude_spans=["receive", "send"],
    )
    return app


class RouteNames:
    """The server span's name and ``http.route`` of a request, remembered per app, method and
    path: the instrumentation finds them by matching the path against every route of the app
    (some 80 here) on each request; the hub's routes do not change once the app is built.
    At most :attr:`size` paths are kept per app (then it starts over)."""

    size = 4096

    def __init__(self, details: Callable[[Any], tuple[str, dict[str, str]]]):
        self.details = details
        self.apps: weakref.WeakKeyDictionary[Any, dict[tuple[str, str], tuple[str, dict[str, str]]]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, scope: Any) -> tuple[str, dict[str, str]]:
        known = self.apps.get(scope["app"])
        if known is None:
            known = self.apps[scope["app"]] = {}
        key = (scope.get("method", ""), scope.get("path", ""))
        found = known.get(key)
        if found is None:
            if len(known) >= self.size:
                known.clear()
            found = known[key] = self.details(scope)
        name, attributes = found
        return name, dict(attributes)


def shutdown() -> None:
    """Flush and stop the process-wide provider (at server or worker exit)."""
    global _configured
    if _configured is not None:
        _configured.force_flush()
        _configured.shutdown()
    _configured = None
    _db_engines.clear()
