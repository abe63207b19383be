"""``redis_stream`` triggers: one execution per message, through a consumer group.

A message is acknowledged (XACK) only after its execution row is committed. The execution id
is derived from the message id, so a message delivered again (this consumer died before the
ack, and another one claimed it with XAUTOCLAIM) finds its execution and is only acknowledged.
A message that can never start an execution (its inputs are invalid, the flow is disabled) is
copied to ``<stream>:dead`` with the error, then acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from hub.engine.runner import Engine
from hub.errors import HubError
from hub.triggers.base import Bound, fire
from hub.triggers.state import TriggerStates

log = logging.getLogger(__name__)

DEAD_SUFFIX = ":dead"


class StreamConsumer:
    def __init__(self, engine: Engine, bound: Bound, url: str, *, consumer: str | None = None,
                 block: float = 1.0, claim_idle: float = 30.0, batch: int = 100):
        self.engine = engine
        self.bound = bound
        self.trigger = bound.trigger
        self.client = aioredis.Redis.from_url(url)
        self.consumer = consumer or engine.owner
        self.block_ms = int(block * 1000)
        self.claim_idle_ms = int(claim_idle * 1000)
        self.batch = batch
        self.states = TriggerStates(engine.store)

    async def setup(self) -> None:
        try:
            await self.client.xgroup_create(self.trigger.stream, self.trigger.group, id="$", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        await self.setup()
        self.states.ensure(*self.bound.key, "redis_stream")
        rounds = 0
        while True:
            try:
                if rounds % 10 == 0:
                    await self.claim_stale()
                rounds += 1
                await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database or Redis is away: retry, nothing was acked
                log.warning("stream trigger %s: %s", self.bound.name, exc)
                self.states.failed(*self.bound.key, f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)

    async def read_once(self) -> int:
        reply = await self.client.xreadgroup(
            self.trigger.group, self.consumer, {self.trigger.stream: ">"}, count=self.batch, block=self.block_ms
        )
        count = 0
        for _, messages in reply or []:
            for message_id, fields in messages:
                await self.handle(message_id, fields)
                count += 1
        return count

    async def claim_stale(self) -> int:
        """Take over messages another consumer read but never acknowledged (it died)."""
        reply = await self.client.xautoclaim(
            self.trigger.stream, self.trigger.group, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
        )
        messages = reply[1] if reply else []
        for message_id, fields in messages:
            if fields is not None:
                await self.handle(message_id, fields)
        return len(messages)

    async def handle(self, message_id: Any, fields: dict[Any, Any]) -> None:
        mid = _text(message_id)
        data = {"stream": self.trigger.stream, "message_id": mid,
                "fields": {_text(k): _text(v) for k, v in (fields or {}).items()}}
        try:
            await fire(self.engine, self.bound, data, f"stream:{self.trigger.stream}:{self.trigger.group}:{mid}",
                       self.states)
        except HubError as exc:
            await self.client.xadd(self.trigger.stream + DEAD_SUFFIX,
                                   {**data["fields"], "_message_id": mid, "_error": str(exc)[:2000]})
        await self.client.xack(self.trigger.stream, self.trigger.group, mid)

    async def close(self) -> None:
        await self.client.aclose()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
