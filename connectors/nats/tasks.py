"""The ``nats.publish`` task kind."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from connectors.bus.publish import KEY_HEADER, MessageParams, encode_body
from connectors.nats.client import NatsConnection, connect
from hub.core.errors import ConnectorError
from hub.core.tasks import TaskContext


class PublishParams(MessageParams, NatsConnection):
    subject: str
    stream: str | None = Field(None, description="Expect this stream to take the message (refused otherwise).")
    timeout: float = Field(10.0, gt=0, description="Seconds to wait for the stream's acknowledgement.")


class Publish:
    """Publish one message to JetStream and wait for the stream's acknowledgement. Output:
    ``{"stream", "sequence", "duplicate"}``.

    The message carries ``Nats-Msg-Id`` = the step's idempotency key, so a re-run of the step
    (after a crash) within the stream's duplicate window is recognised by the server and stored
    once (the output then says ``duplicate: true``).
    """

    type = "nats.publish"
    Params = PublishParams

    async def run(self, ctx: TaskContext, params: PublishParams) -> Any:
        from nats.errors import Error as NatsError

        headers = {**{k: str(v) for k, v in params.headers.items()}, "Nats-Msg-Id": ctx.idempotency_key,
                   KEY_HEADER: ctx.idempotency_key}
        client = None
        try:
            client = await connect(params)
            ack = await client.jetstream().publish(params.subject, encode_body(params.body), timeout=params.timeout,
                                                   stream=params.stream, headers=headers)
        except (NatsError, TimeoutError, OSError) as exc:
            raise ConnectorError(f"nats.publish to {params.subject!r}: {type(exc).__name__}: {exc}") from exc
        finally:
            if client is not None:
                await client.close()
        ctx.log(f"nats.publish: {ack.stream} #{ack.seq}{' (duplicate, stored once)' if ack.duplicate else ''}")
        return {"stream": ack.stream, "sequence": ack.seq, "duplicate": bool(ack.duplicate)}
