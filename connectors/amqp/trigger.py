"""The ``amqp`` trigger: consume a RabbitMQ queue, one execution per message (or batch).

At most ``prefetch`` messages are unacknowledged at a time; a message is acknowledged only
after its execution is committed. The idempotency key is the message's ``message_id`` (set it
when publishing; ``amqp.publish`` does), or else a hash of its content (body, routing key,
headers, timestamp), so a message redelivered after a crash starts nothing twice. Every hub
process consumes the queue (competing consumers). A message that cannot start a run is
published, with an ``x-hub-error`` header and publisher confirms, to the dead-letter exchange
(``dead_letter``, default ``hub.dead``, a direct exchange whose queue ``<queue>.dead`` keeps
it), then acknowledged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import Field

from connectors.bus.consume import BusTriggerConfig, Message, dead_letter_record, run_source, setting_renderer

DEFAULT_DEAD_EXCHANGE = "hub.dead"


class AmqpTriggerConfig(BusTriggerConfig):
    type: Literal["amqp"]
    url: str = Field("amqp://guest:guest@127.0.0.1:5672/", description="amqp:// or amqps:// URL (a template with secret()).")
    queue: str = Field(description="The queue to consume (declared durable when missing, unless declare: false).")
    exchange: str | None = Field(None, description="Bind the queue to this exchange (declared when missing).")
    exchange_type: Literal["direct", "topic", "fanout", "headers"] = "topic"
    binding_key: str = Field("#", description="Routing key of the binding.")
    prefetch: int = Field(100, ge=1, le=65535, description="Unacknowledged messages held at a time.")
    declare: bool = Field(True, description="Declare the queue (durable) and the binding; false: they must exist.")


class AmqpSource:
    """The :class:`connectors.bus.consume.Source` of a RabbitMQ queue."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.config: AmqpTriggerConfig = ctx.bound.trigger
        self.connection: Any = None
        self.channel: Any = None
        self.dead: Any = None
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()

    async def connect(self) -> None:
        import aio_pika

        config = self.config
        self.inbox = asyncio.Queue()
        self.connection = await aio_pika.connect(setting_renderer(self.ctx)(config.url), timeout=10)
        self.channel = await self.connection.channel(publisher_confirms=True)
        await self.channel.set_qos(prefetch_count=config.prefetch)
        queue = await self.channel.declare_queue(config.queue, durable=True, passive=not config.declare)
        if config.exchange and config.declare:
            exchange = await self.channel.declare_exchange(config.exchange, config.exchange_type, durable=True)
            await queue.bind(exchange, routing_key=config.binding_key)
        self.dead = await self.channel.declare_exchange(config.dead_letter or DEFAULT_DEAD_EXCHANGE, "direct", durable=True)
        dead_queue = await self.channel.declare_queue(f"{config.queue}.dead", durable=True)
        await dead_queue.bind(self.dead, routing_key=config.queue)
        await queue.consume(self.inbox.put, no_ack=False)

    async def fetch(self, max_count: int, timeout: float) -> list[Message]:
        try:
            async with asyncio.timeout(timeout):
                first = await self.inbox.get()
        except TimeoutError:
            if self.connection is not None and self.connection.is_closed:
                raise ConnectionError("the AMQP connection closed") from None
            return []
        received = [first]
        while len(received) < max_count and not self.inbox.empty():
            received.append(self.inbox.get_nowait())
        return [_message(msg, self.config.queue) for msg in received]

    async def ack(self, messages: list[Message]) -> None:
        for message in messages:
            await message.handle.ack()

    async def dead_letter(self, message: Message, error: str) -> None:
        import aio_pika

        msg = message.handle
        headers = {**(msg.headers or {}), **{f"x-{k}": v for k, v in
                                              dead_letter_record(message, error, f"amqp:{self.config.queue}").items()}}
        await self.dead.publish(
            aio_pika.Message(msg.body, headers=headers, content_type=msg.content_type, message_id=msg.message_id,
                             timestamp=msg.timestamp, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=self.config.queue,
        )

    async def close(self) -> None:
        connection, self.connection, self.channel = self.connection, None, None
        if connection is not None:
            await connection.close()


def _message(msg: Any, queue: str) -> Message:
    headers = {str(k): _text(v) for k, v in (msg.headers or {}).items()}
    timestamp = msg.timestamp.timestamp() if msg.timestamp else None
    if msg.message_id:
        key = f"{queue}/{msg.message_id}"
    else:
        content = json.dumps([msg.routing_key, headers, timestamp], sort_keys=True, default=str).encode()
        digest = hashlib.sha256(content + b"\x1f" + (msg.body or b"")).hexdigest()
        key = f"{queue}/sha256:{digest}"
    fields = {"key": msg.routing_key, "headers": headers, "exchange": msg.exchange, "routing_key": msg.routing_key,
              "queue": queue, "delivery_tag": msg.delivery_tag, "message_id": msg.message_id,
              "redelivered": bool(msg.redelivered), "content_type": msg.content_type,
              "correlation_id": msg.correlation_id, "timestamp": timestamp}
    return Message(msg.body or b"", key, fields, msg)


def _text(value: Any) -> Any:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class AmqpTrigger:
    """Start the flow for each message of a RabbitMQ queue (see the module docstring)."""

    type: ClassVar[str] = "amqp"
    Config = AmqpTriggerConfig
    leader_only: ClassVar[bool] = False  # competing consumers on one queue

    async def run(self, ctx: Any) -> None:
        await run_source(ctx, AmqpSource(ctx))
