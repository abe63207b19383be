"""The ``mqtt.publish`` task kind."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from connectors.bus.publish import MessageParams, earlier_ack, encode_body, remember_ack
from connectors.mqtt.client import MqttConnection, client
from hub.core.errors import ConnectorError
from hub.core.tasks import TaskContext


class PublishParams(MessageParams, MqttConnection):
    topic: str
    qos: int = Field(1, ge=0, le=2, description="1: wait for the broker's PUBACK (2: PUBCOMP).")
    retain: bool = False


class Publish:
    """Publish one message (QoS 1 by default) and wait for the broker's acknowledgement. Output:
    ``{"topic", "qos"}``. A re-run of the step after its publish was acknowledged answers that
    instead of publishing again. (MQTT 3.1.1 has no headers: ``headers`` must be empty.)
    """

    type = "mqtt.publish"
    Params = PublishParams

    async def run(self, ctx: TaskContext, params: PublishParams) -> Any:
        if params.headers:
            raise ConnectorError("mqtt.publish: MQTT 3.1.1 messages have no headers; put them in the body",
                                 retryable=False)
        earlier = earlier_ack(ctx)
        if earlier is not None:
            return earlier
        import aiomqtt

        try:
            async with client(params) as mqtt:
                await mqtt.publish(params.topic, encode_body(params.body), qos=params.qos, retain=params.retain)
        except aiomqtt.MqttError as exc:
            raise ConnectorError(f"mqtt.publish to {params.topic!r}: {exc}") from exc
        ctx.log(f"mqtt.publish: acknowledged on {params.topic} (QoS {params.qos})")
        return remember_ack(ctx, "mqtt", params.topic, {"topic": params.topic, "qos": params.qos})
