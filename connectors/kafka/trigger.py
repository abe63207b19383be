"""The ``kafka`` trigger: a consumer in a consumer group, one execution per record (or batch).

Offsets are committed only after the executions of the fetched records are committed; the
idempotency key of a record is ``topic/partition/offset``, so a record delivered again (this
process died before the commit, or a rebalance moved its partition) starts nothing twice.
Every hub process runs the consumer; the group shares the partitions between them.
A record that cannot start a run is produced to ``dead_letter`` (default ``<topic>.dead``)
with the error in its ``hub-error`` header, before its offset is committed.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from connectors.bus.consume import BusTriggerConfig, Message, dead_letter_record, run_source, setting_renderer
from connectors.kafka.client import KafkaConnection, client_kwargs, header_list
from hub.core.durations import Duration

BROKER_CHECK_INTERVAL = 5.0  # seconds between metadata requests while no record arrives


class KafkaTriggerConfig(BusTriggerConfig, KafkaConnection):
    type: Literal["kafka"]
    topic: str | None = Field(None, description="The topic to consume (or give `topics`).")
    topics: list[str] | None = None
    group_id: str | None = Field(None, description="Consumer group; default hub.<namespace>.<flow>.<trigger>.")
    offset_reset: Literal["earliest", "latest"] = Field(
        "latest", description="Where a new group starts: the oldest record or only new ones."
    )
    fetch_max_wait: Duration = Field(
        0.05, description="How long the broker may hold a fetch for new records (latency vs requests on an idle topic)."
    )
    session_timeout: Duration = Field(
        10.0, description="A consumer silent this long leaves the group (its partitions move to another process)."
    )

    @model_validator(mode="after")
    def _one_topic_key(self) -> KafkaTriggerConfig:
        if bool(self.topic) == bool(self.topics):
            raise ValueError("give either 'topic' or 'topics'")
        return self

    @property
    def topic_list(self) -> list[str]:
        return [self.topic] if self.topic else list(self.topics or [])


class KafkaSource:
    """The :class:`connectors.bus.consume.Source` of a Kafka consumer group."""

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.config: KafkaTriggerConfig = ctx.bound.trigger
        flow = ctx.bound.flow
        self.group_id = self.config.group_id or f"hub.{flow.namespace}.{flow.id}.{self.config.id}"
        self.consumer: Any = None
        self.producer: Any = None
        self.commit: asyncio.Future[Any] | None = None
        self.checked = 0.0
        self.kwargs: dict[str, Any] = {}

    async def connect(self) -> None:
        from aiokafka import AIOKafkaConsumer

        self.kwargs = client_kwargs(self.config, setting_renderer(self.ctx))
        self.consumer = AIOKafkaConsumer(
            *self.config.topic_list, group_id=self.group_id, enable_auto_commit=False,
            auto_offset_reset=self.config.offset_reset, session_timeout_ms=int(self.config.session_timeout * 1000),
            heartbeat_interval_ms=max(100, int(self.config.session_timeout * 1000 / 3)),
            fetch_max_wait_ms=int(self.config.fetch_max_wait * 1000), **self.kwargs,
        )
        await self.consumer.start()

    async def fetch(self, max_count: int, timeout: float) -> list[Message]:
        if self.commit is not None and self.commit.done():
            await self._committed()  # raises what the last commit met
        batches = await self.consumer.getmany(timeout_ms=int(timeout * 1000), max_records=max_count)
        messages = [_message(record) for records in batches.values() for record in records]
        if not messages:
            await self._check_brokers()
        return messages

    async def _check_brokers(self) -> None:
        """aiokafka rides out a broker going away by itself, silently: when idle, ask for metadata
        now and then, so that an unreachable cluster shows as the trigger's error (and reconnects)."""
        now = asyncio.get_running_loop().time()
        if now - self.checked < BROKER_CHECK_INTERVAL:
            return
        self.checked = now
        await asyncio.wait_for(self.consumer.topics(), 10)

    async def ack(self, messages: list[Message]) -> None:
        from aiokafka import TopicPartition

        offsets: dict[Any, int] = {}
        for message in messages:
            record = message.handle
            tp = TopicPartition(record.topic, record.partition)
            offsets[tp] = max(offsets.get(tp, 0), record.offset + 1)
        # the commit overlaps the next fetch (one at a time, in order); a failed one is raised at
        # the next round, and the records it covered are delivered again (and deduplicated)
        await self._committed()
        self.commit = asyncio.ensure_future(self.consumer.commit(offsets))

    async def _committed(self) -> None:
        commit, self.commit = self.commit, None
        if commit is not None:
            await commit

    async def dead_letter(self, message: Message, error: str) -> None:
        if self.producer is None:
            from aiokafka import AIOKafkaProducer

            self.producer = AIOKafkaProducer(acks="all", **self.kwargs)
            await self.producer.start()
        record = message.handle
        headers = {**dict(record.headers or ()), **dead_letter_record(message, error, f"kafka:{record.topic}")}
        await self.producer.send_and_wait(
            self.config.dead_letter or f"{record.topic}.dead", record.value, key=record.key, headers=header_list(headers)
        )

    async def close(self) -> None:
        try:
            await self._committed()
        finally:
            await self._stop()

    async def _stop(self) -> None:
        consumer, producer, self.consumer, self.producer = self.consumer, self.producer, None, None
        try:
            if consumer is not None:
                await consumer.stop()
        finally:
            if producer is not None:
                await producer.stop()


def _message(record: Any) -> Message:
    key = record.key.decode(errors="replace") if record.key is not None else None
    headers = {k: v.decode(errors="replace") if isinstance(v, bytes) else v for k, v in record.headers or ()}
    fields = {"key": key, "headers": headers, "topic": record.topic, "partition": record.partition,
              "offset": record.offset, "timestamp": record.timestamp / 1000 if record.timestamp else None}
    return Message(record.value or b"", f"{record.topic}/{record.partition}/{record.offset}", fields, record)


class KafkaTrigger:
    """Start the flow for each record of Kafka topics (see the module docstring)."""

    type: ClassVar[str] = "kafka"
    Config = KafkaTriggerConfig
    leader_only: ClassVar[bool] = False  # the consumer group shares the partitions

    async def run(self, ctx: Any) -> None:
        await run_source(ctx, KafkaSource(ctx))
