"""The ``kafka.produce`` task kind."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from connectors.bus.publish import KEY_HEADER, MessageParams, earlier_ack, encode_body, remember_ack
from connectors.kafka.client import KafkaConnection, client_kwargs, header_list
from hub.errors import ConnectorError
from hub.tasks.base import TaskContext


class ProduceParams(MessageParams, KafkaConnection):
    topic: str
    key: str | None = Field(None, description="Record key (records with one key keep their order in one partition).")
    partition: int | None = Field(None, ge=0, description="Partition; default: by key (or spread when there is no key).")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the brokers' acknowledgement.")
    idempotence: bool = Field(
        True, description="Idempotent producer: the library's own retries never write a record twice (needs a broker "
        "that grants producer ids; turn off for one that does not)."
    )


class Produce:
    """Produce one record with an idempotent producer (``acks=all``; ``idempotence: false`` for a
    broker that grants no producer id) and wait for the brokers'
    acknowledgement. Output: ``{"topic", "partition", "offset", "timestamp"}``.

    The record carries the step's idempotency key in the ``hub-idempotency-key`` header; a re-run
    of the step after a crash answers the first acknowledgement instead of producing again.
    """

    type = "kafka.produce"
    Params = ProduceParams

    async def run(self, ctx: TaskContext, params: ProduceParams) -> Any:
        earlier = earlier_ack(ctx)
        if earlier is not None:
            return earlier
        from aiokafka import AIOKafkaProducer
        from aiokafka.errors import KafkaError

        headers = header_list({**params.headers, KEY_HEADER: ctx.idempotency_key})
        producer = AIOKafkaProducer(enable_idempotence=params.idempotence, acks="all", request_timeout_ms=int(params.timeout * 1000),
                                    **client_kwargs(params))
        try:
            await producer.start()
            meta = await producer.send_and_wait(
                params.topic, encode_body(params.body), key=params.key.encode() if params.key is not None else None,
                partition=params.partition, headers=headers,
            )
        except KafkaError as exc:
            raise ConnectorError(f"kafka.produce to {params.topic!r}: {type(exc).__name__}: {exc}",
                                 retryable=bool(getattr(exc, "retriable", True))) from exc
        finally:
            await producer.stop()
        ack = {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset,
               "timestamp": meta.timestamp / 1000 if meta.timestamp and meta.timestamp > 0 else None}
        ctx.log(f"kafka.produce: {meta.topic}[{meta.partition}]@{meta.offset}")
        return remember_ack(ctx, "kafka", params.topic, ack)
