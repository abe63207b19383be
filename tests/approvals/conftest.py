"""Fixtures of the approval tests: a real engine on the parametrized store (SQLite and PostgreSQL)
with a fake clock, the FastAPI app in front of it, the fake Slack Web API on loopback, and helpers
to sign Slack requests and read the emails the outbox kept."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from connectors.email import outbox
from hub import approvals
from hub.api.app import create_app
from hub.api.context import ApiSettings
from hub.approvals.service import Approvals
from hub.approvals.slack import signature
from hub.engine.clock import FakeClock
from hub.engine.runner import Engine
from hub.flow.loader import load_text
from hub.store.api_store import ApiStore
from hub.store.store import Store
from hub.testing import make_engine
from tests.fakes.server import serve
from tests.fakes.slack_api import FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
PUBLIC_URL = "http://hub.test"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    """The fake Slack Web API; ``U0ANA`` and ``U0BEN`` can get DMs."""
    fake = FakeSlack(tokens={"xoxb-test"}, channels={"C0REVIEW": "review", "C0MGMT": "management",
                                                     "U0ANA": "ana", "U0BEN": "ben"})
    with serve(fake.app) as url:
        monkeypatch.setenv("HUB_SLACK_BASE_URL", f"{url}/api/")
        monkeypatch.setenv("HUB_SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        yield fake


@pytest.fixture(autouse=True)
def approval_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_APPROVAL_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("HUB_SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.setenv("HUB_EMAIL_FROM_ADDRESS", "hub@example.com")
    monkeypatch.delenv("HUB_APPROVAL_SECRET", raising=False)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=time.time())


@pytest.fixture
def engine(store: Store, tmp_path: Path, clock: FakeClock) -> Iterator[Engine]:
    engine = make_engine(store, home=tmp_path / "home", clock=clock)
    approvals.install(engine)
    yield engine


def service(engine: Engine) -> Approvals:
    return approvals.install(engine)


@pytest.fixture
def keys(engine: Engine) -> dict[str, str]:
    """API keys by name: ``starter`` (run), ``ana`` and ``ben`` (approve), ``reader`` (read)."""
    store = ApiStore(engine.store)
    return {
        "starter": store.create_key("starter", ["run", "approve"])[1],
        "ana": store.create_key("ana", ["approve"])[1],
        "ben": store.create_key("ben", ["approve"])[1],
        "reader": store.create_key("reader", ["read"])[1],
    }


@pytest.fixture
def client(engine: Engine, keys: dict[str, str]) -> Iterator[TestClient]:
    app = create_app(engine, settings=ApiSettings(), auth="auto", background=False)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
        call_in_app(c, engine.queue.close)  # type: ignore[attr-defined]


def call_in_app(client: TestClient, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run ``fn`` in the app's event loop (where its executions run)."""
    assert client.portal is not None
    return client.portal.call(fn, *args)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def deploy(engine: Engine, source: str) -> str:
    flow = load_text(source)
    engine.deploy(flow)
    return flow.key


def start(client: TestClient, key: str, flow: str, inputs: dict[str, Any] | None = None) -> str:
    namespace, _, flow_id = flow.rpartition(".")
    response = client.post(f"/v1/flows/{namespace}/{flow_id}/executions", json={"inputs": inputs or {}},
                           headers=bearer(key))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait_state(engine: Engine, execution_id: str, want: Callable[[str], bool] | str, timeout: float = 20.0) -> dict[str, Any]:
    check = (lambda s: s == want) if isinstance(want, str) else want
    deadline = time.monotonic() + timeout
    while True:
        row = engine.store.get_execution(execution_id)
        if check(row["state"]):
            return row
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_id} is {row['state']}: {row.get('error')}")
        time.sleep(0.02)


def gate_of(engine: Engine, execution_id: str) -> dict[str, Any]:
    found = [g for g in service(engine).gates(state=None) if g["execution_id"] == execution_id]
    assert found, f"no approval gate for {execution_id}"
    return found[-1]


def emails(engine: Engine, execution_id: str | None = None) -> list[dict[str, Any]]:
    """Every email the outbox kept (oldest first), with its body."""
    rows = outbox.list_messages(engine.store, execution_id=execution_id, limit=500)
    return [outbox.get_message(engine.store, r["id"]) for r in reversed(rows)]


def link_in(message: dict[str, Any]) -> str:
    """The path of the approval link in an email (the host is the configured public URL)."""
    found = re.search(rf"{re.escape(PUBLIC_URL)}(/v1/approvals/links/[A-Za-z0-9_\-.]+)", message["message"]["text"])
    assert found, message["message"]["text"]
    return found.group(1)


def slack_request(payload: dict[str, Any], *, secret: str = SIGNING_SECRET, at: float | None = None) -> dict[str, Any]:
    """Body and headers of an interactivity request as Slack signs it."""
    body = urlencode({"payload": json.dumps(payload)}).encode()
    timestamp = str(int(at if at is not None else time.time()))
    return {
        "content": body,
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature(secret, timestamp, body),
        },
    }


def button(gate_id: str, user: str, action: str = "hub_approve", channel: str = "C0REVIEW",
           ts: str | None = None) -> dict[str, Any]:
    """A block_actions payload for one of the approval buttons."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "api_app_id": "A0HUB",
        "container": {"type": "message", "message_ts": ts, "channel_id": channel},
        "channel": {"id": channel, "name": "review"},
        "trigger_id": "1.2.3",
        "actions": [{"type": "button", "action_id": action, "block_id": f"hub_approval_{gate_id}",
                     "value": gate_id, "action_ts": str(time.time())}],
    }
