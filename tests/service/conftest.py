"""Fixtures of the API tests: a real engine on the parametrized store (SQLite and PostgreSQL),
the FastAPI app in front of it, and clients with and without keys."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.api.app import create_app
from hub.api.context import ApiSettings
from hub.engine.runner import Engine
from hub.store.api_store import ApiStore
from hub.store.store import Store
from hub.testing import make_engine

HELLO = """\
id: hello
namespace: demo
description: Greets someone in two steps.
inputs:
  - {id: name, type: string, default: world}
tasks:
  - {id: greet, type: set, values: {greeting: "hi {{ inputs.name }}"}}
  - {id: shout, type: log, message: "{{ outputs.greet.greeting }}"}
outputs: {greeting: "{{ outputs.greet.greeting }}"}
"""

YAML = {"content-type": "application/x-yaml"}


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> Iterator[Engine]:
    yield make_engine(store, home=tmp_path / "home")


def make_client(engine: Engine, **kwargs: Any) -> TestClient:
    settings = kwargs.pop("settings", None) or ApiSettings(enrich_timeout=10, wait_timeout=10)
    app = create_app(engine, settings=settings, **kwargs)
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """An open API (no keys: the localhost mode)."""
    with make_client(engine, auth="open") as c:
        yield c


@pytest.fixture
def keys(engine: Engine) -> dict[str, str]:
    """One key per scope, by scope name."""
    store = ApiStore(engine.store)
    return {scope: store.create_key(f"test-{scope}", [scope])[1] for scope in ("admin", "run", "approve", "read")}


@pytest.fixture
def secured(engine: Engine, keys: dict[str, str]) -> Iterator[TestClient]:
    """An API that requires keys (``keys`` exist)."""
    with make_client(engine, auth="auto") as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def wait_for(client: TestClient, execution_id: str, states: Callable[[str], bool] | None = None,
              timeout: float = 20.0, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Poll GET /v1/executions/{id} until ``states(state)`` (default: ended)."""
    done = states or (lambda s: s in ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "PAUSED"))
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/v1/executions/{execution_id}", headers=headers).json()
        if done(body["state"]) or time.monotonic() > deadline:
            return body
        time.sleep(0.02)


def assert_error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The one error shape, an RFC 9457 problem, with the expected status (and the hub's ``code``);
    returns the problem."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body = response.json()
    assert {"type", "title", "status", "detail", "instance", "code", "details", "error"} <= set(body), body
    assert body["status"] == status and body["type"] == f"tag:hub,2026:problem:{body['code']}", body
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["details"], list)
    assert body["instance"] == response.request.url.path
    # the body clients read before problem details stays reachable as an extension
    assert body["error"] == {"type": body["code"], "message": body["detail"], "details": body["details"]}
    if code:
        assert body["code"] == code, body
    return dict(body)


def deploy(client: TestClient, source: str = HELLO, headers: dict[str, str] | None = None) -> dict[str, Any]:
    response = client.post("/v1/flows", content=source, headers={**YAML, **(headers or {})})
    assert response.status_code in (200, 201), response.text
    return response.json()
