"""The scaled-out queue: executions go to Redis as arq jobs, ``hub worker`` processes run them.

A job carries only an execution id; the store is the source of truth, so a job that runs twice
or late is harmless (``Engine.run`` claims the execution with a compare-and-set and returns at
once when it is finished or owned by a live process). Every submit gets a fresh job id, so a
continuation after a pause is never deduplicated away by arq.

arq's worker polls its sorted set every ``poll_delay`` seconds. To start a queued execution
within milliseconds without busy polling, every submit also publishes on a wake-up channel;
workers subscribe and poll as soon as a message arrives (:class:`HubWorker`).

Jobs are arq's own (same keys, same serialised form, so arq's tools read them), but both ends
spend fewer round trips than arq's generic code: a submit is one MULTI/EXEC (job, queue entry
and wake-up together; a fresh job id needs no existence check), and a worker claims every job it
takes in one poll with one script instead of four round trips per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import serialize_job
from arq.utils import timestamp_ms
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
        await self.submit_many([execution_id], delay)

    async def submit_many(self, execution_ids: list[str], delay: float = 0.0) -> None:
        """One job per execution, all in one MULTI/EXEC with one wake-up."""
        pool = await self.pool()
        now = timestamp_ms()
        delay_ms = int(delay * 1000) if delay > 0 else 0
        async with pool.pipeline(transaction=True) as pipe:
            for execution_id in execution_ids:
                job_id = f"{execution_id}:{uuid.uuid4().hex[:12]}"
                job = serialize_job(JOB_FUNCTION, (execution_id,), {}, None, now, serializer=pool.job_serializer)
                pipe.psetex(job_key_prefix + job_id, delay_ms + pool.expires_extra_ms, job)
                pipe.zadd(self.queue_name, {job_id: now + delay_ms})
            if not delay_ms:
                pipe.publish(wake_channel(self.queue_name), b"1")
            await pipe.execute()

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

    def __init__(self, *args: Any, capacity: Callable[[], int] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        # how many more jobs this process should take now (None: up to max_jobs)
        self._capacity = capacity
        self._claim: Any = None

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

    async def start_jobs(self, job_ids: list[bytes]) -> None:
        """Claim as many of ``job_ids`` as this worker has room for, in one round trip.

        The same claim as arq's (a job is taken when no worker holds it and it is due, marked
        in progress with arq's timeout), made atomic by a script rather than WATCH/MULTI per job.
        A busy worker takes fewer jobs, leaving the rest on the queue for idle ones."""
        room = self.max_jobs - self.job_counter
        if self._capacity is not None:
            room = min(room, self._capacity() - self.job_counter)
        if room <= 0 or not job_ids:
            return
        if self._claim is None:
            self._claim = self.pool.register_script(CLAIM_SCRIPT)
        claimed = await self._claim(
            keys=[self.queue_name],
            args=[timestamp_ms(), int(self.in_progress_timeout_s * 1000), in_progress_key_prefix, *job_ids[:room]],
        )
        for job_id_b, score in zip(claimed[::2], claimed[1::2], strict=True):
            await self.sem.acquire()  # never waits: room was counted against max_jobs
            self.job_counter += 1
            job_id = job_id_b.decode()
            task = self.loop.create_task(self.run_job(job_id, int(float(score))))
            task.add_done_callback(lambda _: self._release_sem_dec_counter_on_complete())
            self.tasks[job_id] = task

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

    def wake(self) -> None:
        """Look at the queue again now (this process has room for more)."""
        self._wake.set()

    def _release_sem_dec_counter_on_complete(self) -> None:
        super()._release_sem_dec_counter_on_complete()
        self._wake.set()  # a slot is free: look at the queue again


CLAIM_SCRIPT = """
local claimed = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local held = ARGV[3] .. id
  if redis.call('EXISTS', held) == 0 then
    local score = redis.call('ZSCORE', KEYS[1], id)
    if score and tonumber(score) <= tonumber(ARGV[1]) then
      redis.call('PSETEX', held, ARGV[2], '1')
      claimed[#claimed + 1] = id
      claimed[#claimed + 1] = score
    end
  end
end
return claimed
"""


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
