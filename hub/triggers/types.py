"""The built-in trigger types, declared by the triggers plugin like any other.

Their YAML fields are the models of the flow language (:mod:`hub.flow.models`). ``redis_stream``
consumes through :class:`~hub.triggers.context.TriggerContext` exactly as a third-party event-bus
trigger does; schedules and file drops are ticked by the leader, webhooks arrive through the
API, and flow triggers listen to executions ending — the trigger service serves those itself.
"""

from __future__ import annotations

from typing import ClassVar

from hub.flow import models
from hub.triggers.context import TriggerContext


class Schedule:
    type: ClassVar[str] = "schedule"
    Config = models.ScheduleTrigger
    leader_only: ClassVar[bool] = True


class Webhook:
    type: ClassVar[str] = "webhook"
    Config = models.WebhookTrigger
    leader_only: ClassVar[bool] = False


class File:
    type: ClassVar[str] = "file"
    Config = models.FileTrigger
    leader_only: ClassVar[bool] = True


class FlowDone:
    type: ClassVar[str] = "flow"
    Config = models.FlowTrigger
    leader_only: ClassVar[bool] = False


class RedisStream:
    """One execution per message of a Redis stream, through a consumer group shared by every process."""

    type: ClassVar[str] = "redis_stream"
    Config = models.RedisStreamTrigger
    leader_only: ClassVar[bool] = False

    async def run(self, ctx: TriggerContext) -> None:
        from hub.triggers.streams import StreamConsumer

        url = ctx.config.url or ctx.settings.redis_url
        if not url:
            ctx.failed("redis_stream trigger needs 'url' or HUB_REDIS_URL")
            await ctx.stopping.wait()
            return
        consumer = StreamConsumer(ctx.engine, ctx.bound, url, block=ctx.options.get("stream_block", 1.0),
                                  claim_idle=ctx.options.get("stream_claim_idle", 30.0))
        try:
            await consumer.run()
        finally:
            await consumer.close()
