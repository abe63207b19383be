"""The ``amqp.publish`` task kind."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from connectors.bus.publish import KEY_HEADER, MessageParams, earlier_ack, encode_body, remember_ack
from hub.core.errors import ConnectorError
from hub.core.tasks import TaskContext


class PublishParams(MessageParams):
    url: str = Field("amqp://guest:guest@127.0.0.1:5672/", description="amqp:// or amqps:// URL.")
    exchange: str = Field("", description="Exchange to publish to; '' is the default exchange (routing key = queue).")
    routing_key: str = ""
    content_type: str | None = Field(None, description="Default: application/json for JSON bodies, text/plain for text.")
    persistent: bool = Field(True, description="Delivery mode 2: the broker writes the message to disk.")
    timeout: float = Field(10.0, gt=0, description="Seconds to wait for the broker's confirm.")


class Publish:
    """Publish one message with publisher confirms (the broker took responsibility for it when the
    step ends). Output: ``{"exchange", "routing_key", "message_id"}``.

    ``message_id`` is the step's idempotency key, so an ``amqp`` trigger downstream starts one
    execution for it even if a crash made the step publish it twice; a re-run of the step after
    its publish was confirmed answers the first confirm instead of publishing again. A message no
    queue takes (``mandatory``) fails the step.
    """

    type = "amqp.publish"
    Params = PublishParams

    async def run(self, ctx: TaskContext, params: PublishParams) -> Any:
        earlier = earlier_ack(ctx)
        if earlier is not None:
            return earlier
        import aio_pika
        from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

        body = encode_body(params.body)
        content_type = params.content_type or ("text/plain" if isinstance(params.body, str) else "application/json")
        message = aio_pika.Message(
            body, headers={**{k: str(v) for k, v in params.headers.items()}, KEY_HEADER: ctx.idempotency_key},
            message_id=ctx.idempotency_key, content_type=content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT if params.persistent else aio_pika.DeliveryMode.NOT_PERSISTENT,
        )
        try:
            connection = await aio_pika.connect(params.url, timeout=params.timeout)
        except (AMQPError, OSError, TimeoutError) as exc:
            raise ConnectorError(f"amqp.publish: cannot connect: {type(exc).__name__}: {exc}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchange = (await channel.get_exchange(params.exchange, ensure=True) if params.exchange
                        else channel.default_exchange)
            await exchange.publish(message, routing_key=params.routing_key, mandatory=True, timeout=params.timeout)
        except (DeliveryError, PublishError) as exc:
            raise ConnectorError(f"amqp.publish to {params.exchange or '(default)'}/{params.routing_key}: the broker "
                                 f"did not take the message ({exc}); does a queue bind this routing key?",
                                 retryable=False) from exc
        except (AMQPError, OSError, TimeoutError) as exc:
            raise ConnectorError(f"amqp.publish: {type(exc).__name__}: {exc}") from exc
        finally:
            await connection.close()
        ctx.log(f"amqp.publish: confirmed on {params.exchange or '(default)'}/{params.routing_key}")
        ack = {"exchange": params.exchange, "routing_key": params.routing_key, "message_id": ctx.idempotency_key}
        return remember_ack(ctx, "amqp", f"{params.exchange}/{params.routing_key}", ack)
