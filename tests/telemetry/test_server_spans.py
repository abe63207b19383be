"""The API's server spans: named by the route template, found once per app, method and path."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.telemetry.setup import RouteNames, instrument_app, untraced_urls


def _app() -> FastAPI:
    app = FastAPI()
    items = APIRouter(prefix="/items")

    @items.get("/{item_id}")
    def get_item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    @items.post("/{item_id}")
    def post_item(item_id: str) -> dict[str, str]:
        return {"posted": item_id}

    v1 = APIRouter(prefix="/v1")
    v1.include_router(items)
    app.include_router(v1)
    return app


def test_server_spans_carry_the_route_template(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TRACING", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = instrument_app(_app(), tracer_provider=provider)
    with TestClient(app) as client:
        for path in ("/v1/items/a", "/v1/items/b", "/v1/items/a"):
            assert client.get(path).status_code == 200
        assert client.post("/v1/items/a").json() == {"posted": "a"}
        assert client.get("/nowhere").status_code == 404
    server = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert [s.name for s in server] == ["GET /v1/items/{item_id}"] * 3 + ["POST /v1/items/{item_id}", "GET"]
    assert {s.attributes.get("http.route") for s in server[:4]} == {"/v1/items/{item_id}"}
    assert "http.route" not in server[4].attributes
    provider.shutdown()


def test_only_the_probes_go_untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_TRACING", raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = _app()
    for probe in ("/health", "/ready", "/metrics"):
        app.get(probe)(lambda: {"ok": True})
    app = instrument_app(app, tracer_provider=provider)
    with TestClient(app) as client:
        for path in ("/health", "/ready", "/metrics", "/v1/items/health-check", "/v1/items/metrics",
                     "/v1/items/ready?x=/health"):
            assert client.get(path).status_code == 200
    server = [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]
    assert [s.attributes.get("url.path", s.attributes.get("http.target")) for s in server] == [
        "/v1/items/health-check", "/v1/items/metrics", "/v1/items/ready"]
    provider.shutdown()


def test_the_untraced_pattern_follows_the_apps_root_path() -> None:
    import re

    plain, mounted = re.compile(untraced_urls()), re.compile(untraced_urls("/hub/"))
    for path in ("/health", "/healthz", "/ready/", "/metrics"):
        assert plain.search(f"http://h{path}") and mounted.search(f"https://h:8080/hub{path}")
    for path in ("/v1/enrich/ops/health", "/v1/items/health-check", "/healthy"):
        assert not plain.search(f"http://h{path}") and not mounted.search(f"http://h/hub{path}")
    assert not mounted.search("http://h/health")  # outside the app's root path: not its probe


def test_route_names_are_found_once_per_app_method_and_path() -> None:
    calls: list[tuple[str, str]] = []

    def details(scope: dict[str, Any]) -> tuple[str, dict[str, str]]:
        calls.append((scope["method"], scope["path"]))
        return f"{scope['method']} /x/{{id}}", {"http.route": "/x/{id}"}

    names = RouteNames(details)
    one, other = _app(), _app()
    first = names({"app": one, "method": "GET", "path": "/x/1"})
    first[1]["changed"] = "by a caller"  # each caller gets its own attributes
    assert names({"app": one, "method": "GET", "path": "/x/1"}) == ("GET /x/{id}", {"http.route": "/x/{id}"})
    names({"app": one, "method": "POST", "path": "/x/1"})
    names({"app": other, "method": "GET", "path": "/x/1"})
    assert calls == [("GET", "/x/1"), ("POST", "/x/1"), ("GET", "/x/1")]

    names.size = 2  # a full table starts over
    names({"app": one, "method": "GET", "path": "/x/2"})
    names({"app": one, "method": "GET", "path": "/x/1"})
    assert calls[-2:] == [("GET", "/x/2"), ("GET", "/x/1")]
