"""The trigger service: schedules and file drops on the leader, stream consumers, flow triggers.

``hub serve`` starts it in its lifespan (:func:`start`). With Redis, every server process runs
one; a lease in Redis makes one of them the leader for schedules and file scans, stream
triggers share the work through their consumer groups, and flow triggers fire in whichever
process sees the upstream execution end (workers attach them too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hub.engine.runner import Engine
from hub.settings import HubSettings
from hub.triggers import files, schedule
from hub.triggers.base import enabled_triggers
from hub.triggers.flows import FlowTriggers
from hub.triggers.leader import LocalLeader, RedisLeader
from hub.triggers.state import TriggerStates
from hub.triggers.streams import StreamConsumer

log = logging.getLogger(__name__)

LEADER_KEY = "hub:scheduler:leader"


class TriggerService:
    """Runs every non-webhook trigger of the deployed flows. ``start()`` / ``stop()``."""

    def __init__(self, engine: Engine, settings: HubSettings | None = None, *, tick: float = 1.0,
                 leader_key: str = LEADER_KEY, leader_ttl: float = 10.0, refresh: float = 5.0,
                 stream_block: float = 1.0, stream_claim_idle: float = 30.0):
        self.engine = engine
        self.settings = settings or engine.settings
        self.tick_interval = tick
        self.refresh_interval = refresh
        self.stream_block = stream_block
        self.stream_claim_idle = stream_claim_idle
        redis_url = self.settings.redis_url
        self.leader: LocalLeader | RedisLeader = (
            RedisLeader(redis_url, leader_key, leader_ttl) if redis_url else LocalLeader()
        )
        self.states = TriggerStates(engine.store)
        self.flow_triggers = FlowTriggers(engine)
        self.consumers: dict[tuple[str, str, str], tuple[Any, asyncio.Task[None]]] = {}
        self.fired = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._file_checked: dict[tuple[str, str, str], float] = {}

    async def start(self) -> None:
        self._stopping.clear()
        self.flow_triggers.attach()
        self._tasks = [
            asyncio.create_task(self._loop(self.tick_interval, self.lead_once), name="triggers: leader"),
            asyncio.create_task(self._loop(self.refresh_interval, self.sync_streams), name="triggers: streams"),
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop after the current round (a fire under way completes, so its count and its
        execution agree), cancelling what is still busy after ``grace`` seconds."""
        self.flow_triggers.detach()
        self._stopping.set()
        if self._tasks:
            _, busy = await asyncio.wait(self._tasks, timeout=grace)
            for task in busy:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for consumer, task in self.consumers.values():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            await consumer.close()
        self.consumers.clear()
        await self.flow_triggers.drain()
        await self.leader.release()

    async def lead_once(self, now: float | None = None) -> list[str]:
        """If this process leads: fire due schedules and scan file folders."""
        if not await self.leader.lead():
            return []
        now = time.time() if now is None else now
        bounds = enabled_triggers(self.engine, {"schedule", "file"})  # one pass over the flows per tick
        schedules = [b for b in bounds if b.trigger.type == "schedule"]
        created = await schedule.tick(self.engine, now, self.states, schedules)
        for bound in bounds:
            if bound.trigger.type != "file" or now - self._file_checked.get(bound.key, 0.0) < bound.trigger.interval:
                continue
            self._file_checked[bound.key] = now
            try:
                created.extend(await files.scan(self.engine, bound, self.states))
            except Exception as exc:
                log.exception("file trigger %s failed", bound.name)
                self.states.failed(*bound.key, f"{type(exc).__name__}: {exc}")
        self.fired += len(created)
        return created

    async def sync_streams(self) -> None:
        """One consumer task per enabled stream trigger (started, stopped as flows change)."""
        wanted = {b.key: b for b in enabled_triggers(self.engine, {"redis_stream"})}
        for key in list(self.consumers):
            if key not in wanted:
                consumer, task = self.consumers.pop(key)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await consumer.close()
        for key, bound in wanted.items():
            if key in self.consumers:
                continue
            url = bound.trigger.url or self.settings.redis_url
            if not url:
                self.states.ensure(*key, "redis_stream")
                self.states.failed(*key, "redis_stream trigger needs 'url' or HUB_REDIS_URL")
                continue
            consumer = StreamConsumer(self.engine, bound, url, block=self.stream_block,
                                      claim_idle=self.stream_claim_idle)
            self.consumers[key] = (consumer, asyncio.create_task(consumer.run(), name=f"stream {bound.name}"))

    async def _loop(self, interval: float, call: Callable[[], Awaitable[Any]]) -> None:
        while not self._stopping.is_set():
            try:
                await call()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger loop failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)


async def start(engine: Engine) -> Callable[[], Awaitable[None]]:
    """Start the trigger service for a server process; returns its ``stop``."""
    from hub.service.runtime import queue_name

    service = TriggerService(engine, leader_key=f"{queue_name()}:scheduler-leader")
    await service.start()
    return service.stop
