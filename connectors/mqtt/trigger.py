"""The ``mqtt`` trigger: a persistent session subscribed with QoS 1, one execution per message.

The session (``client_id``, clean session off) survives restarts: the broker keeps what arrives
while the hub is away. A message is acknowledged (PUBACK) only after its execution is
committed. MQTT gives a message no identity of its own, so its idempotency key is a hash of
its topic and payload (or the trigger's ``key`` template, e.g. ``"{{ trigger.body.id }}"``):
two identical payloads on one topic are one execution — put an id in the payload. One process
runs the session (a second client with the same id would take it over): the leader. A message
that cannot start a run is published (QoS 1) to ``dead_letter`` (default ``hub/dead/<topic>``)
as JSON ``{"error", "topic", "body"}``; subscribe a persistent session there to keep them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from connectors.bus.consume import BusTriggerConfig, Message, parse_body, run_source, setting_renderer
from connectors.mqtt.client import MqttConnection, client


class MqttTriggerConfig(BusTriggerConfig, MqttConnection):
    type: Literal["mqtt"]
    topic: str = Field(description="Topic filter (+ and # wildcards allowed).")
    client_id: str | None = Field(None, description="Session id; default hub-<namespace>-<flow>-<trigger>.")


class MqttSource:
    """The :class:`connectors.bus.consume.Source` of a persistent MQTT session."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.config: MqttTriggerConfig = ctx.bound.trigger
        flow = ctx.bound.flow
        self.client_id = self.config.client_id or f"hub-{flow.namespace}-{flow.id}-{self.config.id}"
        self.client: Any = None
        self.messages: Any = None

    async def connect(self) -> None:
        self.client = client(self.config, setting_renderer(self.ctx), identifier=self.client_id, clean_session=False)
        # acknowledge after the execution exists, not on receipt (aiomqtt exposes no switch for
        # it; the paho client underneath has one)
        self.client._client.manual_ack_set(True)
        await self.client.__aenter__()
        await self.client.subscribe(self.config.topic, qos=1)
        self.messages = self.client.messages

    async def fetch(self, max_count: int, timeout: float) -> list[Message]:
        try:
            async with asyncio.timeout(timeout):
                first = await anext(self.messages)
        except TimeoutError:
            return []
        received = [first]
        while len(received) < max_count and len(self.messages) > 0:
            received.append(await anext(self.messages))
        return [_message(msg) for msg in received]

    async def ack(self, messages: list[Message]) -> None:
        for message in messages:
            msg = message.handle
            if msg.qos > 0:
                self.client._client.ack(msg.mid, msg.qos)

    async def dead_letter(self, message: Message, error: str) -> None:
        topic = message.fields["topic"]
        body, encoding = parse_body(message.payload)
        record = {"error": error[:2000], "topic": topic, "body": body, "body_encoding": encoding}
        await self.client.publish(self.config.dead_letter or f"hub/dead/{topic}", json.dumps(record), qos=1)

    async def close(self) -> None:
        mqtt, self.client = self.client, None
        if mqtt is not None:
            await mqtt.__aexit__(None, None, None)


def _message(msg: Any) -> Message:
    topic = str(msg.topic)
    payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload or "").encode()
    fields = {"topic": topic, "qos": msg.qos, "retain": bool(msg.retain), "headers": {}, "key": None}
    digest = hashlib.sha256(topic.encode() + b"\x1f" + payload).hexdigest()
    return Message(payload, f"{topic}/sha256:{digest}", fields, msg)


class MqttTrigger:
    """Start the flow for each message on an MQTT topic filter (see the module docstring)."""

    type: ClassVar[str] = "mqtt"
    Config = MqttTriggerConfig
    leader_only: ClassVar[bool] = True  # one session per client id

    async def run(self, ctx: Any) -> None:
        await run_source(ctx, MqttSource(ctx))
