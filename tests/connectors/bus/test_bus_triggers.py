"""Bus triggers (kafka, nats, amqp, mqtt) against the real brokers: one execution per message,
malformed messages in the dead-letter destination with their error."""

from __future__ import annotations

import json

import pytest

from hub.engine.runner import Engine
from hub.triggers.state import trigger_states
from tests.connectors.bus.brokers import Broker
from tests.connectors.bus.conftest import BUSES, count, executions, flow_text, running, until

pytestmark = pytest.mark.anyio


# The bus's own parts of the trigger data, besides body (and timestamp where the bus has one).
FIELDS = {
    "kafka": {"topic", "partition", "offset", "key", "headers", "timestamp"},
    "nats": {"subject", "stream", "sequence", "delivered", "headers", "timestamp"},
    "amqp": {"queue", "routing_key", "delivery_tag", "message_id", "redelivered", "headers"},
    "mqtt": {"topic", "qos", "retain"},
}


@pytest.mark.parametrize("broker", BUSES, indirect=True)
async def test_each_message_starts_one_execution_with_the_message_as_trigger_data(
    engine: Engine, broker: Broker
) -> None:
    await broker.prepare()
    await broker.produce([json.dumps({"n": i}).encode() for i in range(200)])
    trigger = await running(engine, flow_text(broker.trigger()))
    try:
        await until(lambda: count(engine) >= 200, timeout=60, message="200 executions")
    finally:
        await trigger.stop()
    rows = executions(engine)
    assert sorted(r["inputs"]["n"] for r in rows) == list(range(200))  # each message once
    data = rows[0]["trigger"]
    assert data["type"] == broker.bus and data["id"] == "inbox" and data["body"] == {"n": rows[0]["inputs"]["n"]}
    assert {k for k, v in data.items() if v is not None} >= FIELDS[broker.bus]
    [state] = trigger_states(engine.store, "bus")
    assert state["fire_count"] == 200 and state["last_error"] is None


@pytest.mark.parametrize("broker", BUSES, indirect=True)
async def test_a_message_that_cannot_start_a_run_is_dead_lettered_with_its_error(
    engine: Engine, broker: Broker
) -> None:
    await broker.watch_dead_letters()
    await broker.prepare()
    trigger = await running(engine, flow_text(broker.trigger()))
    try:
        await broker.produce([b'{"n": 1}', b"not json at all", b'{"n": "many"}', b'{"n": 2}'])
        await until(lambda: count(engine) >= 2, message="the two good messages to start")
        dead = await broker.dead_letters(2)
    finally:
        await trigger.stop()
    assert sorted(r["inputs"]["n"] for r in executions(engine)) == [1, 2]
    assert len(dead) == 2, dead
    by_body = {json.dumps(body): error for body, error in dead}
    assert "has no attribute 'n'" in by_body['"not json at all"']  # the text body has no field n
    assert "many" in by_body['{"n": "many"}'] and "int" in by_body['{"n": "many"}']  # fails the input type
