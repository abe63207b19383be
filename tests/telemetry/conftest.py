"""Engines traced into in-memory exporters (and the hub database), with the test kinds."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.engine.runner import Engine
from hub.settings import HubSettings
from hub.store.store import Store
from hub.tasks.registry import builtin_registry
from hub.telemetry.middleware import install
from hub.telemetry.setup import build_tracer_provider
from tests.telemetry import kinds

SECRET = "s3cr3t-token-value"


class Traced:
    """One "process": an engine with its own tracer provider and in-memory exporter."""

    def __init__(self, store: Store, home: Path):
        registry = builtin_registry()
        kinds.register(registry)
        self.engine = Engine(store, HubSettings(home=home), registry=registry)
        self.exporter = InMemorySpanExporter()
        self.provider = build_tracer_provider([self.exporter], store=store, simple=True)
        self.middleware = install(self.engine, self.provider)

    def flow(self, text: str) -> Any:
        return self.engine.catalog.loader.load_text(text)

    def spans(self) -> list[Any]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Traced]]:
    monkeypatch.setenv("HUB_SECRET_API_TOKEN", SECRET)
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    monkeypatch.delenv("HUB_TRACING", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    # the exact span trees below trace every step as a span; the default (pure steps as events on
    # their parent span) has a test of its own
    monkeypatch.setenv("HUB_TRACE_PURE_STEPS", "spans")
    kinds.CALLS.clear()
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    made: list[Traced] = []

    def make() -> Traced:
        made.append(Traced(store, tmp_path))
        return made[-1]

    yield make
    for one in made:
        one.provider.shutdown()
    store.close()


def tree(spans: list[Any]) -> list[Any]:
    """Spans as nested ``(name, [children])``, siblings by start time; unknown parents are roots."""
    by_id = {s.context.span_id: s for s in spans}
    kids: dict[int | None, list[Any]] = {}
    for s in spans:
        parent = s.parent.span_id if s.parent is not None and s.parent.span_id in by_id else None
        kids.setdefault(parent, []).append(s)

    def build(parent: int | None) -> list[Any]:
        ordered = sorted(kids.get(parent, []), key=lambda s: s.start_time)
        return [(s.name, build(s.context.span_id)) for s in ordered]

    return build(None)


def named(spans: list[Any], name: str) -> list[Any]:
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time)


def every_string(span: Any) -> list[str]:
    """Every string a span carries: name, status, attribute, event and link values."""
    out = [span.name, span.status.description or ""]
    groups = [span.attributes or {}] + [e.attributes or {} for e in span.events] + [lk.attributes or {} for lk in span.links]
    for attrs in groups:
        for value in attrs.values():
            values = value if isinstance(value, tuple | list) else [value]
            out.extend(str(v) for v in values)
    out.extend(e.name for e in span.events)
    return out


def sync(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test body with ``asyncio.run`` (the suite has no async plugin)."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(fn(*args, **kwargs))

    return wrapper
