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

from hub.core.plugins import PluginError
from hub.core.registry import trigger_registry
from hub.engine.runner import Engine
from hub.errors import HubError
from hub.settings import HubSettings
from hub.triggers import files, schedule
from hub.triggers.base import Bound, enabled_triggers
from hub.triggers.context import TriggerContext
from hub.triggers.flows import FlowTriggers
from hub.triggers.leader import LocalLeader, RedisLeader
from hub.triggers.state import TriggerStates

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
        self.consumers: dict[tuple[str, str, str], tuple[TriggerContext, asyncio.Task[None]]] = {}
        self.consumer_options = {"stream_block": stream_block, "stream_claim_idle": stream_claim_idle}
        self.types = trigger_registry(getattr(engine.registry, "plugins", None) or None)
        self.fired = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self._file_checked: dict[tuple[str, str, str], float] = {}

    async def start(self) -> None:
        self._stopping.clear()
        self.flow_triggers.attach()
        self._tasks = [
            asyncio.create_task(self._loop(self.tick_interval, self.lead_once), name="triggers: leader"),
            asyncio.create_task(self._loop(self.refresh_interval, self.sync_consumers), name="triggers: consumers"),
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
        for ctx, task in self.consumers.values():
            ctx.stopping.set()
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
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
                message = str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
                if message != (self.states.get(*bound.key) or {}).get("last_error"):  # reported once
                    log.error("file trigger %s failed: %s", bound.name, message,
                              exc_info=not isinstance(exc, HubError))
                self.states.failed(*bound.key, message)
        self.fired += len(created)
        return created

    async def sync_consumers(self) -> None:
        """One consumer task per enabled trigger whose type consumes events (``run``), started
        and stopped as flows change; a ``leader_only`` type runs only while this process leads."""
        leading = self.leader.is_leader
        wanted: dict[tuple[str, str, str], tuple[Bound, Any]] = {}
        for bound in enabled_triggers(self.engine):
            kind = self._consumer_kind(bound)
            if kind is not None and (leading or not getattr(kind, "leader_only", False)):
                wanted[bound.key] = (bound, kind)
        for key in list(self.consumers):
            ctx, task = self.consumers[key]
            if key not in wanted or wanted[key][0].flow.content_hash != ctx.bound.flow.content_hash or task.done():
                self.consumers.pop(key)
                ctx.stopping.set()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for key, (bound, kind) in wanted.items():
            if key in self.consumers:
                continue
            ctx = TriggerContext(self.engine, bound, self.states, options=self.consumer_options,
                                 log=logging.getLogger(f"hub.trigger.{bound.trigger.type}"))
            ctx.states.ensure(*key, bound.trigger.type)
            task = asyncio.create_task(self._consume(kind, ctx), name=f"trigger {bound.name}")
            self.consumers[key] = (ctx, task)

    def _consumer_kind(self, bound: Bound) -> Any:
        try:
            cls = self.types.get(bound.trigger.type)
        except PluginError as exc:
            self.states.ensure(*bound.key, bound.trigger.type)
            self.states.failed(*bound.key, str(exc))
            return None
        return cls() if cls is not None and callable(getattr(cls, "run", None)) else None

    async def _consume(self, kind: Any, ctx: TriggerContext) -> None:
        """Run one consumer; a consumer that ends with an error is recorded and started again
        after a growing pause (1 s doubling to 60 s), never more often."""
        pause = 1.0
        while not ctx.stopping.is_set():
            try:
                await kind.run(ctx)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("trigger %s stopped: %s; again in %.0f s", ctx.name, exc, pause)
                ctx.failed(f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await ctx.stopping.wait()
            pause = min(pause * 2, 60.0)

    async def _loop(self, interval: float, call: Callable[[], Awaitable[Any]]) -> None:
        while not self._stopping.is_set():
            try:
                await call()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("trigger loop failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._stopping.wait()


async def start(engine: Engine) -> Callable[[], Awaitable[None]]:
    """Start the trigger service for a server process; returns its ``stop``."""
    name = getattr(engine.queue, "queue_name", None) or engine.settings.queue_name
    service = TriggerService(engine, leader_key=f"{name}:scheduler-leader")
    await service.start()
    return service.stop
