"""Publish tasks against the real brokers: a flow publishes, the bus's own library reads it back;
a step run again (same execution, same step: same idempotency key) does not publish twice."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from hub.engine.runner import Engine
from hub.tasks.base import TaskContext
from hub.testing import run_flow_async
from tests.connectors.bus.brokers import require

pytestmark = pytest.mark.anyio


def publish_flow(step: str) -> str:
    return f"""
id: publisher
namespace: bus
inputs: [{{id: order, type: string}}]
tasks:
  - {step}
outputs: {{ack: "{{{{ outputs.send }}}}"}}
"""


def step_context(engine: Engine, execution_id: str = "e-crashed") -> TaskContext:
    """The context of one step of one execution: a re-run gets the same idempotency key."""
    return TaskContext(execution_id=execution_id, namespace="bus", flow_id="publisher", task_id="send", path="send",
                       attempt=2, settings=engine.settings, store=engine.store)


async def test_kafka_produce_round_trip_and_rerun(engine: Engine) -> None:
    require("kafka")
    from aiokafka import AIOKafkaConsumer

    from connectors.kafka.tasks import Produce

    topic = f"t{uuid.uuid4().hex[:10]}"
    step = ('{id: send, type: kafka.produce, bootstrap_servers: "127.0.0.1:9092", topic: ' + topic
            + ', key: "{{ inputs.order }}", headers: {source: hub}, body: {order: "{{ inputs.order }}", total: 12.5}}')
    result = await run_flow_async(publish_flow(step), {"order": "A-1"}, engine=engine)
    assert result.state == "SUCCESS", result.error
    ack = result.outputs["ack"]
    assert ack["topic"] == topic and ack["offset"] == 0

    # the step of another execution runs twice (a crash after the broker's ack)
    params = Produce.Params.model_validate(
        {"bootstrap_servers": "127.0.0.1:9092", "topic": topic, "body": "again"})
    first = await Produce().run(step_context(engine), params)
    second = await Produce().run(step_context(engine), params)
    assert first == second

    consumer = AIOKafkaConsumer(topic, bootstrap_servers="127.0.0.1:9092", auto_offset_reset="earliest")
    await consumer.start()
    try:
        records = [r for batch in (await consumer.getmany(timeout_ms=3000)).values() for r in batch]
    finally:
        await consumer.stop()
    records.sort(key=lambda r: r.key is None)  # (two partitions: no order between them)
    assert [(r.key, r.value) for r in records] == [(b"A-1", b'{"order":"A-1","total":12.5}'), (None, b"again")]
    headers = dict(records[0].headers)
    assert headers["source"] == b"hub"
    assert headers["hub-idempotency-key"] == f"{result.id}:send".encode()


async def test_kafka_produce_to_no_broker_fails_the_step_with_a_retryable_error(engine: Engine) -> None:
    step = ('{id: send, type: kafka.produce, bootstrap_servers: "127.0.0.1:1", topic: nowhere, body: x, timeout: 2, '
            'retry: {max_attempts: 1}}')
    result = await run_flow_async(publish_flow(step), {"order": "A-1"}, engine=engine)
    assert result.state == "FAILED"
    error = result.step("send")["error"]
    assert "kafka.produce to 'nowhere'" in error["message"] and error["retryable"] is True


async def test_nats_publish_round_trip_and_rerun_deduplicated_by_msg_id(engine: Engine) -> None:
    require("nats")
    import nats

    from connectors.nats.tasks import Publish

    stream, subject = f"T{uuid.uuid4().hex[:10]}", f"t{uuid.uuid4().hex[:10]}.out"
    client = await nats.connect("nats://127.0.0.1:4222")
    js = client.jetstream()
    await js.add_stream(name=stream, subjects=[subject])
    try:
        step = f'{{id: send, type: nats.publish, subject: {subject}, body: {{order: "{{{{ inputs.order }}}}"}}}}'
        result = await run_flow_async(publish_flow(step), {"order": "B-2"}, engine=engine)
        assert result.state == "SUCCESS", result.error
        assert result.outputs["ack"] == {"stream": stream, "sequence": 1, "duplicate": False}

        params = Publish.Params.model_validate({"subject": subject, "body": "once"})
        first = await Publish().run(step_context(engine), params)
        again = await Publish().run(step_context(engine), params)  # the re-run: the server drops it
        assert (first["sequence"], first["duplicate"]) == (2, False)
        assert (again["sequence"], again["duplicate"]) == (2, True)

        info = await js.stream_info(stream)
        assert info.state.messages == 2
        msg = await js.get_msg(stream, 1)
        assert json.loads(msg.data) == {"order": "B-2"}
        assert msg.headers["Nats-Msg-Id"] == f"{result.id}:send"
    finally:
        await js.delete_stream(stream)
        await client.close()


async def test_amqp_publish_round_trip_with_confirms_and_rerun(engine: Engine) -> None:
    require("amqp")
    import aio_pika

    from connectors.amqp.tasks import Publish

    queue_name = f"t{uuid.uuid4().hex[:10]}"
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/")
    channel = await connection.channel()
    queue = await channel.declare_queue(queue_name, durable=True)
    try:
        step = (f'{{id: send, type: amqp.publish, routing_key: {queue_name}, headers: {{source: hub}}, '
                f'body: {{order: "{{{{ inputs.order }}}}"}}}}')
        result = await run_flow_async(publish_flow(step), {"order": "C-3"}, engine=engine)
        assert result.state == "SUCCESS", result.error
        params = Publish.Params.model_validate({"routing_key": queue_name, "body": "once"})
        assert await Publish().run(step_context(engine), params) == await Publish().run(step_context(engine), params)

        got = [await queue.get(timeout=5) for _ in range(2)]
        assert await queue.get(fail=False) is None  # the re-run published nothing
        assert [m.body for m in got] == [b'{"order":"C-3"}', b"once"]
        assert got[0].message_id == f"{result.id}:send" and got[0].content_type == "application/json"
        assert got[0].headers["source"] == "hub"

        # a routing key no queue binds: the broker returns the message, the step fails (not retried)
        lost = await run_flow_async(publish_flow("{id: send, type: amqp.publish, routing_key: nobody_listens, body: x}"),
                                    {"order": "C-4"}, engine=engine)
        assert lost.state == "FAILED"
        assert "does a queue bind this routing key" in lost.step("send")["error"]["message"]
    finally:
        await channel.queue_delete(queue_name)
        await connection.close()


async def test_mqtt_publish_round_trip_qos1_and_rerun(engine: Engine) -> None:
    require("mqtt")
    import aiomqtt

    from connectors.mqtt.tasks import Publish

    topic = f"hubtest/{uuid.uuid4().hex[:10]}/out"
    received: list[Any] = []
    async with aiomqtt.Client("127.0.0.1", 1883) as client:
        await client.subscribe(topic, qos=1)
        step = f'{{id: send, type: mqtt.publish, topic: {topic}, body: {{order: "{{{{ inputs.order }}}}"}}}}'
        result = await run_flow_async(publish_flow(step), {"order": "D-4"}, engine=engine)
        assert result.state == "SUCCESS", result.error
        assert result.outputs["ack"] == {"topic": topic, "qos": 1}
        params = Publish.Params.model_validate({"topic": topic, "body": "once"})
        await Publish().run(step_context(engine), params)
        await Publish().run(step_context(engine), params)

        async def read() -> None:
            async for message in client.messages:
                received.append(bytes(message.payload))  # type: ignore[arg-type]

        reader = asyncio.create_task(read())
        await asyncio.sleep(1.0)  # time for a duplicate to show up, if there were one
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
    assert received == [b'{"order":"D-4"}', b"once"]


async def test_kafka_produce_idempotence_auto_says_when_the_broker_grants_no_producer_id(engine: Engine) -> None:
    require("kafka")
    topic = f"t{uuid.uuid4().hex[:10]}"
    step = '{id: send, type: kafka.produce, bootstrap_servers: "127.0.0.1:9092", topic: ' + topic + ", body: x}"
    result = await run_flow_async(publish_flow(step), {"order": "A-1"}, engine=engine)
    assert result.state == "SUCCESS", result.error
    granted = not any("grants no producer id" in line["message"] for line in engine.store.logs(result.id))
    strict = await run_flow_async(publish_flow(step.replace("body: x", "body: x, idempotence: true, retry: "
                                                             "{max_attempts: 1}")), {"order": "A-2"}, engine=engine)
    # the Tansu broker of the tests grants none: 'auto' produced without, 'true' refuses to
    assert strict.state == ("SUCCESS" if granted else "FAILED")
    if not granted:
        assert "kafka.produce to" in strict.step("send")["error"]["message"]
