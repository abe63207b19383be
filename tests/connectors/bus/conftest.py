"""Fixtures of the bus tests: a broker adapter per bus, an engine, and a running trigger."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import yaml

from hub.engine.runner import Engine
from hub.flow.loader import load_text
from hub.testing import make_engine
from tests.connectors.bus.brokers import BROKERS, Broker

BUSES = list(BROKERS)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engine(sqlite_store: Any) -> Iterator[Engine]:
    yield make_engine(sqlite_store)


@pytest.fixture
def both_engine(store: Any) -> Iterator[Engine]:
    """An engine on SQLite and on PostgreSQL (where starts are group-committed from a thread)."""
    yield make_engine(store)


@pytest.fixture
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    made = BROKERS[request.param]()
    try:
        yield made
    finally:
        with contextlib.suppress(Exception):
            await made.close()


def flow_text(trigger: dict[str, Any], flow_id: str = "orders", extra: str = "") -> str:
    """A small flow: one int input from the message body, one step."""
    trigger = {"id": "inbox", "inputs": {"n": "{{ trigger.body.n }}"}, **trigger}
    return f"""
id: {flow_id}
namespace: bus
inputs: [{{id: n, type: int, required: true}}]
triggers: [{yaml.safe_dump(trigger, default_flow_style=True, width=10_000).strip()}]
{extra}
tasks:
  - {{id: keep, type: set, values: {{n: "{{{{ inputs.n }}}}"}}}}
"""


async def running(engine: Engine, flow: str) -> Any:
    """Deploy ``flow`` (YAML, its trigger validated by the plugin's Config) and run the trigger
    service of this process; ``await service.stop()`` at the end."""
    from hub.triggers.service import TriggerService

    engine.deploy(load_text(flow))
    service = TriggerService(engine, refresh=0.2)
    await service.start()
    return service


def executions(engine: Engine, flow_id: str = "orders") -> list[dict[str, Any]]:
    return engine.store.list_executions(namespace="bus", flow_id=flow_id, limit=100_000)


def count(engine: Engine, flow_id: str = "orders") -> int:
    """How many executions the flow has (cheap enough to poll)."""
    from sqlalchemy import func, select

    from hub.store.tables import EXECUTIONS as table

    query = select(func.count()).select_from(table).where(table.c.namespace == "bus", table.c.flow_id == flow_id)
    with engine.store.engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


async def until(check: Callable[[], Any], timeout: float = 30.0, message: str = "condition") -> Any:
    """Poll ``check`` until it is truthy (a deadline, never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {message}")
