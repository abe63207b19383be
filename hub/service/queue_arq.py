"""The scaled-out queue: executions go to Redis as arq jobs, ``hub worker`` processes run them.

A job carries only an execution id; the store is the source of truth, so a job that runs twice
or late is harmless (``Engine.run`` claims the execution with a compare-and-set and returns at
once when it is finished or owned by a live process). Every submit gets a fresh job id, so a
continuation after a pause is never deduplicated away by arq.

arq's worker polls its sorted set every ``poll_delay`` seconds. To start a queued execution
within milliseconds without busy polling, every submit also publishes on a wake-up channel;
workers subscribe and poll as soon as a message arrives (:class:`HubWorker`).

Jobs are arq's own (same keys, same serialised form, so arq's tools read them), but both ends
spend fewer round trips than arq's generic code: a submit is one MULTI/EXEC (jobs, queue entries
and the wake-up together; a fresh job id needs no existence check), and a worker takes every job
it has room for, and learns when the next deferred one is due, with one script per poll instead
of six round trips per job.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from typing import Any

from hub.core.imports import defer_import

defer_import("jwt")  # before redis: redis names PyJWT's token type, PyJWT loads cryptography (~9 MiB)

from arq.connections import ArqRedis, RedisSettings, create_pool  # noqa: E402
from arq.constants import in_progress_key_prefix, job_key_prefix  # noqa: E402
from arq.jobs import deserialize_job, serialize_job  # noqa: E402
from arq.utils import timestamp_ms  # noqa: E402
from arq.worker import Worker  # noqa: E402
from redis.exceptions import RedisError  # noqa: E402

from hub.engine.queue import DEFAULT_QUEUE  # noqa: E402

log = logging.getLogger(__name__)


JOB_FUNCTION = "run_execution"
WAKE_SUFFIX = ":wake"
POLL_TIMEOUT = 10.0  # seconds one poll of the queue may take before Redis counts as not answering


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

    async def submit_many(
        self, execution_ids: list[str], delay: float = 0.0, hints: dict[str, tuple[str, str, int]] | None = None
    ) -> None:
        """One job per execution, all in one MULTI/EXEC with one wake-up. ``hints``: the flow
        revision of an execution, when known, so the worker need not look it up."""
        pool = await self.pool()
        now = timestamp_ms()
        delay_ms = int(delay * 1000) if delay > 0 else 0
        async with pool.pipeline(transaction=True) as pipe:
            for execution_id in execution_ids:
                job_id = f"{execution_id}:{uuid.uuid4().hex[:12]}"
                hint = (hints or {}).get(execution_id)
                kwargs = {"flow": list(hint)} if hint else {}
                job = serialize_job(JOB_FUNCTION, (execution_id,), kwargs, None, now, serializer=pool.job_serializer)
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
    """arq's worker, with a poll made for short jobs and a wake-up channel.

    One script per poll takes every due job this process has room for off the queue (job id,
    queue entry and payload; a job marked in progress by another arq consumer is left alone) and
    answers when the next deferred job is due. Due jobs it had no room for wait for a wake-up (a
    submit, a slot freeing here) rather than a busy loop. Between wake-ups the worker sleeps until then, or
    ``poll_delay`` at most, so delayed continuations (timers, retries) still start on time.

    A job here only hands an execution id to this process (:func:`hub.service.worker.run_execution`);
    the execution's state lives in the database, so a job taken by a worker that dies before it
    claims the execution is not lost: the sweep of any worker submits the execution again.
    """

    def __init__(self, *args: Any, capacity: Callable[[], int] | None = None,
                 on_poll: Callable[[], None] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._on_poll = on_poll  # called after every poll that Redis answered (the worker's liveness)
        self._wake = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        # how many more jobs this process should take now (None: up to max_jobs)
        self._capacity = capacity
        self._take: Any = None
        self._next_due_ms: float | None = None
        self._redis_down = False
        self._starved = True  # the last poll left due jobs it had no room for (see wake)

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
                if not await self._poll_safely():
                    await asyncio.sleep(self.poll_delay_s)  # Redis is away: retry at the poll delay
                    continue
                if self.burst and not self.tasks and not await self.pool.zcard(self.queue_name):
                    return
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._idle_time()):
                        await self._wake.wait()
        finally:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            await pubsub.aclose()

    async def _poll_safely(self) -> bool:
        """One poll; False when Redis did not answer (logged once per outage: the worker keeps
        running what it has and polls again, instead of dying with the connection)."""
        try:
            # a Redis that accepts and never answers must not stall the worker either (jobs a
            # cut-off poll took are found again by the sweep: their executions are still QUEUED)
            async with asyncio.timeout(POLL_TIMEOUT):
                await self._poll_iteration()
        except (RedisError, OSError, TimeoutError) as exc:
            if not self._redis_down:
                log.warning("the queue on Redis does not answer (%s: %s); retrying every %.1fs",
                            type(exc).__name__, exc, self.poll_delay_s)
            self._redis_down = True
            return False
        if self._on_poll is not None:
            self._on_poll()
        return True

    def room(self) -> int:
        """Jobs to take now: a busy worker takes fewer, leaving the rest for idle ones."""
        held = sum(not t.done() for t in self.tasks.values())
        room = self.max_jobs - held
        if self._capacity is not None:
            room = min(room, self._capacity() - held)
        return room

    async def _poll_iteration(self) -> None:
        for job_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[job_id]
                if not task.cancelled() and task.exception() is not None:  # logged, as arq's run_job does
                    log.error("job %s failed", job_id, exc_info=task.exception())
        room = self.room() if self.allow_pick_jobs else 0
        if self._take is None:
            self._take = self.pool.register_script(TAKE_SCRIPT)
        taken = await self._take(
            keys=[self.queue_name], args=[timestamp_ms(), max(room, 0), job_key_prefix, in_progress_key_prefix]
        )
        if self._redis_down:  # (said before the jobs it took start: they may end the worker's wait)
            log.warning("the queue on Redis answers again")
            self._redis_down = False
        *jobs, next_due = taken
        self._next_due_ms = float(next_due) if next_due else None
        # it took all it had room for: due jobs may be left, to take when room frees up
        self._starved = len(jobs) // 2 >= room
        for job_id, payload in zip(jobs[::2], jobs[1::2], strict=True):
            self._dispatch(job_id.decode(), payload)
        await self.heart_beat()

    def _dispatch(self, job_id: str, payload: bytes) -> None:
        try:
            job = deserialize_job(payload, deserializer=self.job_deserializer)
        except Exception:
            log.exception("job %s cannot be read; dropped", job_id)
            return
        function = self.functions.get(job.function)
        if function is None:
            log.error("job %s asks for %r, which this worker does not run; dropped", job_id, job.function)
            return
        self.jobs_complete += 1
        task = asyncio.create_task(function.coroutine(self.ctx, *job.args, **job.kwargs), name=f"job {job_id}")
        task.add_done_callback(lambda _: self.wake())  # room again: look at the queue
        self.tasks[job_id] = task

    def _idle_time(self) -> float:
        """Until the next deferred job is due, capped at ``poll_delay``."""
        if self._next_due_ms is None:
            return self.poll_delay_s
        return max(0.0, min(self.poll_delay_s, (self._next_due_ms - timestamp_ms()) / 1000))

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
        """Look at the queue again now (this process has room for more) — if the last look left
        due jobs behind for want of room. Otherwise the queue had nothing more, and a new job
        comes with its own wake-up (a poll per freed slot would be a round trip per execution)."""
        if self._starved or self.burst:
            self._wake.set()

    async def close(self) -> None:
        """End the jobs still held here, remove arq's health-check key and close the connections.

        Replaces arq's ``Worker.close``, which ends with redis-py's deprecated ``Redis.close``
        (a DeprecationWarning at every shutdown); ``aclose`` is its replacement. A job still held
        here only waits for a slot: its execution stays QUEUED in the store for a sweep.
        """
        for task in self.tasks.values():
            task.cancel()  # a finished task ignores it
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        pool = self._pool
        if pool is None:
            return
        try:
            await pool.delete(self.health_check_key)
            if self.on_shutdown:
                await self.on_shutdown(self.ctx)
        finally:
            self._pool = None
            await pool.aclose(close_connection_pool=True)


TAKE_SCRIPT = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local taken = {}
for _, id in ipairs(due) do
  if redis.call('EXISTS', ARGV[4] .. id) == 0 then
    local job = redis.call('GET', ARGV[3] .. id)
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', ARGV[3] .. id)
    if job then
      taken[#taken + 1] = id
      taken[#taken + 1] = job
    end
  end
end
local later = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
taken[#taken + 1] = later[2] or ''
return taken
"""
