"""The ``nats`` trigger: a JetStream durable pull consumer, one execution per message (or batch).

A message is acknowledged only after its execution is committed; its idempotency key is
``<stream>/<stream sequence>``, so a message redelivered after ``ack_wait`` (this process died
before acknowledging) starts nothing twice. Every hub process pulls from the same durable
consumer, which shares the messages between them. A message that cannot start a run is
published to ``dead_letter`` (default ``hub.dead.<stream>``, kept in the stream
``<stream>_dead`` created when no stream takes that subject) with a ``Hub-Error`` header.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from connectors.bus.consume import BusTriggerConfig, Message, dead_letter_record, run_source, setting_renderer
from connectors.nats.client import NatsConnection, connect, durable_name, ensure_stream
from hub.core.durations import Duration


class NatsTriggerConfig(BusTriggerConfig, NatsConnection):
    type: Literal["nats"]
    stream: str = Field(description="The JetStream stream (created with `subject` when it does not exist).")
    subject: str = Field(description="Subject (wildcards allowed) the consumer filters on.")
    durable: str | None = Field(None, description="Durable consumer name; default hub_<namespace>_<flow>_<trigger>.")
    ack_wait: Duration = Field(30.0, description="Redeliver a message not acknowledged within this time.")
    deliver_policy: Literal["all", "new"] = Field("all", description="Where a new durable consumer starts.")


class NatsSource:
    """The :class:`connectors.bus.consume.Source` of a JetStream durable pull consumer."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.config: NatsTriggerConfig = ctx.bound.trigger
        flow = ctx.bound.flow
        self.durable = durable_name(self.config.durable or f"hub_{flow.namespace}_{flow.id}_{self.config.id}")
        self.client: Any = None
        self.js: Any = None
        self.sub: Any = None

    async def connect(self) -> None:
        from nats.js import api

        self.client = await connect(self.config, setting_renderer(self.ctx))
        self.js = self.client.jetstream()
        await ensure_stream(self.js, self.config.stream, [self.config.subject])
        consumer = api.ConsumerConfig(
            durable_name=self.durable, ack_policy=api.AckPolicy.EXPLICIT, ack_wait=self.config.ack_wait,
            deliver_policy=api.DeliverPolicy.ALL if self.config.deliver_policy == "all" else api.DeliverPolicy.NEW,
            filter_subject=self.config.subject,
        )
        self.sub = await self.js.pull_subscribe(self.config.subject, durable=self.durable,
                                                stream=self.config.stream, config=consumer)

    async def fetch(self, max_count: int, timeout: float) -> list[Message]:
        from nats.errors import TimeoutError as NatsTimeout

        try:
            received = await self.sub.fetch(max_count, timeout=timeout)
        except NatsTimeout:
            return []
        return [_message(msg) for msg in received]

    async def ack(self, messages: list[Message]) -> None:
        for message in messages:
            await message.handle.ack()
        await self.client.flush()

    async def dead_letter(self, message: Message, error: str) -> None:
        from nats.errors import NoRespondersError
        from nats.js.errors import NoStreamResponseError

        msg = message.handle
        subject = self.config.dead_letter or f"hub.dead.{self.config.stream}"
        record = dead_letter_record(message, error, f"nats:{msg.subject}")
        headers = {**(msg.headers or {}), **{k.title(): v for k, v in record.items()}}
        try:
            await self.js.publish(subject, msg.data, headers=headers)
        except (NoRespondersError, NoStreamResponseError):  # no stream keeps that subject yet
            await ensure_stream(self.js, durable_name(f"{self.config.stream}_dead"), [subject])
            await self.js.publish(subject, msg.data, headers=headers)

    async def close(self) -> None:
        client, self.client, self.js, self.sub = self.client, None, None, None
        if client is not None:
            await client.close()


def _message(msg: Any) -> Message:
    meta = msg.metadata
    fields = {"subject": msg.subject, "headers": dict(msg.headers or {}), "stream": meta.stream,
              "sequence": meta.sequence.stream, "delivered": meta.num_delivered,
              "timestamp": meta.timestamp.timestamp() if meta.timestamp else None}
    return Message(msg.data or b"", f"{meta.stream}/{meta.sequence.stream}", fields, msg)


class NatsTrigger:
    """Start the flow for each message of a JetStream stream (see the module docstring)."""

    type: ClassVar[str] = "nats"
    Config = NatsTriggerConfig
    leader_only: ClassVar[bool] = False  # the durable consumer shares the messages

    async def run(self, ctx: Any) -> None:
        await run_source(ctx, NatsSource(ctx))
