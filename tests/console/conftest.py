"""Fixtures of the console tests: a real engine on the parametrized store (SQLite and PostgreSQL)
behind the whole app, clients that keep the session cookie, API keys by scope, and flows."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
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

GREET = """\
id: greet
namespace: demo
description: Greets someone a few times.
inputs:
  - {id: name, type: string, required: true, description: Who to greet}
  - {id: times, type: int, default: 2}
  - {id: loud, type: bool, default: false}
  - {id: tone, type: enum, values: [warm, dry], default: warm}
tasks:
  - id: hello
    type: set
    values: {text: "hello {{ inputs.name }} x{{ inputs.times }} ({{ inputs.tone }})"}
  - id: shout
    type: if
    condition: "{{ inputs.loud }}"
    then:
      - {id: upper, type: log, message: "{{ outputs.hello.text | upper }}"}
    else:
      - {id: quiet, type: log, message: "{{ outputs.hello.text }}"}
outputs: {text: "{{ outputs.hello.text }}"}
"""

REFUND = """\
id: refund
namespace: support
inputs:
  - {id: amount, type: float, required: true}
tasks:
  - id: review
    type: approval
    title: Refund request
    message: "Refund {{ inputs.amount }} EUR to the customer?"
    approvers: [key:ana]
    form:
      amount: {type: number, default: "{{ inputs.amount }}", min: 0, max: 500}
      note: {type: text, default: "Sorry for the trouble."}
  - id: pay
    type: set
    values: {amount: "{{ outputs.review.form.amount }}", decision: "{{ outputs.review.decision }}"}
outputs: {amount: "{{ outputs.pay.amount }}", decision: "{{ outputs.pay.decision }}"}
"""

YAML = {"content-type": "application/x-yaml"}


@pytest.fixture
def engine(store: Store, tmp_path: Path) -> Iterator[Engine]:
    yield make_engine(store, home=tmp_path / "home")


def console(engine: Engine, auth: str = "auto") -> TestClient:
    app = create_app(engine, settings=ApiSettings(wait_timeout=10), auth=auth)
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    """The console on an open server (no keys)."""
    with console(engine, auth="open") as c:
        yield c


@pytest.fixture
def keys(engine: Engine) -> dict[str, str]:
    """Keys by name: admin, run, reader (read), ana (approve)."""
    store = ApiStore(engine.store)
    scopes = {"admin": ["admin"], "run": ["run"], "reader": ["read"], "ana": ["approve"]}
    return {name: store.create_key(name, s)[1] for name, s in scopes.items()}


@pytest.fixture
def secured(engine: Engine, keys: dict[str, str]) -> Iterator[TestClient]:
    with console(engine) as c:
        yield c


def csrf(client: TestClient, page: str = "/flows") -> str:
    """This session's CSRF token, as the pages carry it."""
    found = re.search(r'name="csrf-token" content="([^"]+)"', client.get(page, follow_redirects=True).text)
    assert found, "the page carries no CSRF token"
    return found[1]


def sign_in(client: TestClient, key: str, next_url: str = "/flows") -> Any:
    page = client.get("/signin", params={"next": next_url})
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text
    return client.post("/signin", data={"csrf": token[1], "key": key, "next": next_url})


def deploy(client: TestClient, source: str, headers: dict[str, str] | None = None) -> None:
    response = client.post("/v1/flows", content=source, headers={**YAML, **(headers or {})})
    assert response.status_code in (200, 201), response.text


def wait_state(engine: Engine, execution_id: str, wanted: set[str], timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        row = engine.store.get_execution(execution_id)
        if row["state"] in wanted or time.monotonic() > deadline:
            return row
        time.sleep(0.02)


def text_of(html: str) -> str:
    """The page's visible text, roughly: tags dropped, whitespace squeezed."""
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'").replace("&#34;", '"').replace("&quot;", '"').replace("&amp;", "&")
