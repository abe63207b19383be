"""The scaled-out queue: executions go to Redis as arq jobs, ``hub worker`` processes run them.

A job carries only an execution id; the store is the source of truth, so a job that runs twice
or late is harmless (``Engine.run`` claims the execution with a compare-and-set and returns at
once when it is finished or owned by a live process). Every submit gets a fresh job id, so a
continuation after a pause is never deduplicated away by arq.

arq's worker polls its sorted set every ``poll_delay`` seconds. To start a queued execution
within milliseconds without busy polling, every submit also publishes on a wake-up channel;
workers subscribe and poll as soon as a message arrives (:class:`HubWorker`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.worker import Worker

log = logging.getLogger(__name__)

DEFAULT_QUEUE = "hub:queue"
JOB_FUNCTION = "run_execution"
WAKE_SUFFIX = ":wake"


def wake_channel(queue_name: str) -> str:
    return queue_name + WAKE_SUFFIX


def redis_settings(url: str) -> RedisSettings:
    return RedisSettings.from_dsn(url)


class ArqQueue:
    """A :class:`hub.engine.queue.Queue` on Redis. Connects on first use."""

    def __init__(self, redis_url: str, queue_name: str = DEFAULT_QUEUE):
        self.redis_url = redis_url
        self.queue_name = queue_name
        self._pool: ArqRedis | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> ArqRedis:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    self._pool = await create_pool(
                        redis_settings(self.redis_url), default_queue_name=self.queue_name
                    )
        return self._pool

    async def submit(self, execution_id: str, delay: float = 0.0) -> None:
        pool = await self.pool()
        job_id = f"{execution_id}:{uuid.uuid4().hex[:12]}"
        await pool.enqueue_job(
            JOB_FUNCTION, execution_id, _job_id=job_id, _queue_name=self.queue_name,
            _defer_by=delay if delay > 0 else None,
        )
        if delay <= 0:
            await pool.publish(wake_channel(self.queue_name), b"1")

    async def depth(self) -> int:
        """Jobs waiting (or deferred) on the queue."""
        pool = await self.pool()
        return int(await pool.zcard(self.queue_name))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


class HubWorker(Worker):
    """arq's worker, woken by the submit channel instead of sleeping a fixed ``poll_delay``.

    Between wake-ups it sleeps until the next deferred job is due, or ``poll_delay`` at most, so
    delayed continuations (timers, retries) still start on time.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def main(self) -> None:
        if self._pool is None:
            self._pool = await create_pool(
                self.redis_settings, default_queue_name=self.queue_name,
                job_serializer=self.job_serializer, job_deserializer=self.job_deserializer,
            )
        self.ctx["redis"] = self.pool
        pubsub = self.pool.pubsub()
        await pubsub.subscribe(wake_channel(self.queue_name))
        self._listener = asyncio.create_task(self._listen(pubsub))
        if self.on_startup:
            await self.on_startup(self.ctx)
        try:
            while True:
                self._wake.clear()
                await self._poll_iteration()
                if self.burst and not self.tasks and not await self.pool.zcard(self.queue_name):
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), await self._idle_time())
        finally:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            await pubsub.aclose()

    async def _idle_time(self) -> float:
        """Until the next deferred job is due, capped at ``poll_delay``."""
        if self.job_counter >= self.max_jobs:
            return self.poll_delay_s  # a finishing job wakes the loop
        nxt = await self.pool.zrange(self.queue_name, 0, 0, withscores=True)
        if not nxt:
            return self.poll_delay_s
        loop_now_ms = _now_ms()
        return max(0.0, min(self.poll_delay_s, (nxt[0][1] - loop_now_ms) / 1000))

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # a dropped connection: fall back to polling until it returns
                log.warning("wake-up channel lost; polling every %.2fs", self.poll_delay_s, exc_info=True)
                await asyncio.sleep(self.poll_delay_s)
                continue
            if message is not None:
                self._wake.set()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._wake.set()  # a slot is free: look at the queue again


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
