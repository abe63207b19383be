"""The ``kafka.produce`` task kind."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from connectors.bus.publish import KEY_HEADER, MessageParams, earlier_ack, encode_body, remember_ack
from connectors.kafka.client import KafkaConnection, client_kwargs, header_list
from hub.core.errors import ConnectorError
from hub.core.tasks import TaskContext


class ProduceParams(MessageParams, KafkaConnection):
    topic: str
    key: str | None = Field(None, description="Record key (records with one key keep their order in one partition).")
    partition: int | None = Field(None, ge=0, description="Partition; default: by key (or spread when there is no key).")
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the brokers' acknowledgement.")
    idempotence: bool | Literal["auto"] = Field(
        "auto", description="Idempotent producer (the client's own retries never write a record twice). auto: on when "
        "the broker grants a producer id, else off (said in the step's log); true: required."
    )


class Produce:
    """Produce one record with ``acks=all`` and an idempotent producer, and wait for the brokers'
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
        from aiokafka.errors import KafkaError

        headers = header_list({**params.headers, KEY_HEADER: ctx.idempotency_key})
        producer = await _started(ctx, params)
        try:
            meta = await producer.send_and_wait(
                params.topic, encode_body(params.body), key=params.key.encode() if params.key is not None else None,
                partition=params.partition, headers=headers,
            )
        except KafkaError as exc:
            raise _error(params, exc) from exc
        finally:
            await producer.stop()
        ack = {"topic": meta.topic, "partition": meta.partition, "offset": meta.offset,
               "timestamp": meta.timestamp / 1000 if meta.timestamp and meta.timestamp > 0 else None}
        ctx.log(f"kafka.produce: {meta.topic}[{meta.partition}]@{meta.offset}")
        return remember_ack(ctx, "kafka", params.topic, ack)


async def _started(ctx: TaskContext, params: ProduceParams) -> Any:
    """A started producer: idempotent when asked, or (``auto``) when the broker grants a producer id."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import BrokerResponseError, KafkaError

    kwargs = {"acks": "all", "request_timeout_ms": int(params.timeout * 1000), **client_kwargs(params)}
    producer = AIOKafkaProducer(enable_idempotence=params.idempotence is not False, **kwargs)
    try:
        await producer.start()
        return producer
    except BrokerResponseError as exc:
        await producer.stop()
        if params.idempotence is not True and params.idempotence is not False:
            ctx.log(f"kafka.produce: the broker grants no producer id ({type(exc).__name__}); producing without "
                    "idempotence", level="warning")
            producer = AIOKafkaProducer(enable_idempotence=False, **kwargs)
            try:
                await producer.start()
                return producer
            except KafkaError as again:
                await producer.stop()
                raise _error(params, again) from again
        raise _error(params, exc) from exc
    except KafkaError as exc:
        await producer.stop()
        raise _error(params, exc) from exc


def _error(params: ProduceParams, exc: Exception) -> ConnectorError:
    return ConnectorError(f"kafka.produce to {params.topic!r}: {type(exc).__name__}: {exc}",
                          retryable=bool(getattr(exc, "retriable", True)))
