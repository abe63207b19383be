"""Fixtures of the bus tests: a broker adapter per bus, an engine, and a running trigger."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
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


TRIGGERS = {
    "kafka": "connectors.kafka.trigger:KafkaTrigger",
    "nats": "connectors.nats.trigger:NatsTrigger",
    "amqp": "connectors.amqp.trigger:AmqpTrigger",
    "mqtt": "connectors.mqtt.trigger:MqttTrigger",
}


@dataclass
class StandIn:  # TODO(h14a): the lead's TriggerContext once it lands
    bound: Any
    engine: Any
    states: Any
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def fire_many(self, events: list[tuple[dict[str, Any], str]]) -> list[Any]:
        from hub.triggers.base import fire_many

        return await fire_many(self.engine, self.bound, events, self.states)


class Running:
    def __init__(self, ctx: StandIn, task: asyncio.Task[None]):
        self.ctx, self.task = ctx, task

    async def stop(self) -> None:
        self.ctx.stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.task, 10)


async def running(engine: Engine, flow: str) -> Running:
    """Deploy ``flow`` and start its (only) trigger in this process."""
    import importlib

    from hub.triggers.base import Bound
    from hub.triggers.state import TriggerStates

    data = yaml.safe_load(flow)
    trigger = data.pop("triggers")[0]
    parsed = load_text(yaml.safe_dump(data))
    engine.deploy(parsed)
    module, _, attr = TRIGGERS[trigger["type"]].partition(":")
    kind = getattr(importlib.import_module(module), attr)
    ctx = StandIn(Bound(parsed, kind.Config.model_validate(trigger)), engine, TriggerStates(engine.store))
    return Running(ctx, asyncio.create_task(kind().run(ctx)))


def executions(engine: Engine, flow_id: str = "orders") -> list[dict[str, Any]]:
    return engine.store.list_executions(namespace="bus", flow_id=flow_id, limit=100_000)


def count(engine: Engine, flow_id: str = "orders") -> int:
    """How many executions the flow has (cheap enough to poll)."""
    from sqlalchemy import func, select

    from hub.store.tables import Execution

    table = Execution.__table__  # type: ignore[attr-defined]
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
