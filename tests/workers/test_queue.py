"""The Redis queue in one process, on the real Redis: ``ArqQueue.submit_many`` writes arq's own
jobs (keys, sorted set, serializer) and one wake-up; ``HubWorker`` takes them with one script per
poll, as many as it has room for, drops jobs for functions it does not run, and leaves deferred
jobs until they are due; ``run_execution`` hands the id (and flow hint) to the worker runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from arq.connections import ArqRedis, create_pool
from arq.constants import in_progress_key_prefix, job_key_prefix
from arq.jobs import deserialize_job
from arq.worker import func

from hub.flow.loader import load_text
from hub.service.queue_arq import JOB_FUNCTION, ArqQueue, HubWorker, redis_settings, wake_channel
from hub.service.worker import CTX_KEY, WorkerOptions, WorkerRuntime, make_worker, run_execution
from hub.store.store import Store
from hub.testing import make_engine

pytestmark = pytest.mark.anyio

FLOW = """
id: hello
namespace: wq
inputs: [{id: n, type: int}]
tasks:
  - {id: echo, type: set, values: {n: "{{ inputs.n }}"}}
outputs: {n: "{{ outputs.echo.n }}"}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def queue(redis_url: str, queue_name: str) -> Iterator[str]:
    """``queue_name``, with every job left on it, its wake channel and health key removed after."""
    yield queue_name
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        left = [m.decode() for m in client.zrange(queue_name, 0, -1)]
        keys = [job_key_prefix + j for j in left] + [in_progress_key_prefix + j for j in left]
        client.delete(queue_name, wake_channel(queue_name), queue_name + ":health-check", *keys)
    finally:
        client.close()


async def arq_pool(redis_url: str, queue_name: str) -> ArqRedis:
    return await create_pool(redis_settings(redis_url), default_queue_name=queue_name)


class Recorder:
    """A job function under the hub's job name: records (execution id, kwargs), optionally waits."""

    def __init__(self, gate: asyncio.Event | None = None):
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.gate = gate

    async def __call__(self, ctx: dict[str, Any], execution_id: str, **kwargs: Any) -> None:
        self.received.append((execution_id, kwargs))
        if self.gate is not None:
            await self.gate.wait()


async def fake_worker(redis_url: str, queue_name: str, job: Callable[..., Awaitable[None]],
                      **options: Any) -> HubWorker:
    """A HubWorker running ``job`` as ``run_execution``, connected as ``main()`` would connect it."""

    async def run_execution(ctx: dict[str, Any], execution_id: str, **kwargs: Any) -> None:
        await job(ctx, execution_id, **kwargs)

    worker = HubWorker(
        functions=[func(run_execution, name=JOB_FUNCTION)],
        queue_name=queue_name,
        redis_settings=redis_settings(redis_url),
        handle_signals=False,
        keep_result=0,
        log_results=False,
        **options,
    )
    worker._pool = await arq_pool(redis_url, queue_name)
    return worker


@contextlib.asynccontextmanager
async def worker_and_producer(redis_url: str, queue_name: str, job: Callable[..., Awaitable[None]],
                              **options: Any) -> AsyncIterator[tuple[HubWorker, ArqQueue]]:
    """:func:`fake_worker` and an :class:`ArqQueue` on the same queue; both closed after (the
    worker's held jobs cancelled)."""
    worker = await fake_worker(redis_url, queue_name, job, **options)
    producer = ArqQueue(redis_url, queue_name)
    try:
        yield worker, producer
    finally:
        await producer.close()
        await worker.close()


async def settle(worker: HubWorker) -> None:
    await asyncio.gather(*worker.tasks.values())


async def job_ids(pool: ArqRedis, queue_name: str) -> list[str]:
    return [m.decode() for m in await pool.zrange(queue_name, 0, -1)]


async def run_main_until_received(worker: HubWorker, recorder: Recorder,
                                  also: Callable[[], bool] = lambda: True) -> None:
    """Run ``worker.main()`` until ``recorder`` got a job and ``also()`` holds (10 s at most); main
    must still be running then. Cancels it and closes the worker's pool."""
    main = asyncio.create_task(worker.main())
    try:
        deadline = time.monotonic() + 10
        while not (recorder.received and also()) and time.monotonic() < deadline and not main.done():
            await asyncio.sleep(0.02)
        assert not main.done(), main.exception() if main.done() else None
    finally:
        main.cancel()
        await asyncio.wait([main], timeout=5)
        await worker.pool.aclose()
    assert main.cancelled(), "worker.main() went on after it was cancelled"


# -- format compatibility ---------------------------------------------------------------------------


async def test_job_enqueued_by_arq_runs_its_execution(sqlite_store: Store, redis_url: str, queue: str) -> None:
    engine = make_engine(sqlite_store)
    engine.queue = ArqQueue(redis_url, queue)
    flow = load_text(FLOW)
    execution_id = await engine.start(flow, {"n": 5}, enqueue=False)  # QUEUED, not on Redis
    runtime = WorkerRuntime(engine, WorkerOptions(concurrency=4, prefetch=0))
    worker = make_worker(runtime)
    worker._pool = await arq_pool(redis_url, queue)
    client = await arq_pool(redis_url, queue)
    try:
        job = await client.enqueue_job("run_execution", execution_id)  # arq's own producer
        assert job is not None
        assert await client.exists(job_key_prefix + job.job_id)
        assert await job_ids(client, queue) == [job.job_id]

        await worker._poll_iteration()

        assert not await client.exists(job_key_prefix + job.job_id)
        assert await client.zcard(queue) == 0
        assert list(worker.tasks) == [job.job_id]
        await settle(worker)
        deadline = time.monotonic() + 10
        while runtime.active and time.monotonic() < deadline:
            await asyncio.wait(list(runtime.active.values()), timeout=0.5)
        row = sqlite_store.get_execution(execution_id)
        assert row["state"] == "SUCCESS" and row["outputs"] == {"n": 5}
    finally:
        await client.aclose()
        await worker.close()
        await engine.queue.close()  # type: ignore[attr-defined]


async def test_engine_starts_run_on_a_burst_worker(sqlite_store: Store, redis_url: str, queue: str) -> None:
    """Hub to hub: ``Engine.start`` submits (submit_many, with flow hints) and ``worker.main()`` runs them."""
    engine = make_engine(sqlite_store)
    engine.queue = ArqQueue(redis_url, queue)
    runtime = WorkerRuntime(engine, WorkerOptions(concurrency=4, prefetch=1, burst=True))
    worker = make_worker(runtime)
    try:
        flow = load_text(FLOW)
        ids = [await engine.start(flow, {"n": i}) for i in range(3)]
        assert await engine.queue.depth() == 3  # type: ignore[attr-defined]
        await asyncio.wait_for(worker.main(), timeout=20)
        assert await runtime.drain(20) == []
        rows = [sqlite_store.get_execution(i) for i in ids]
        assert [(r["state"], r["outputs"]) for r in rows] == [("SUCCESS", {"n": i}) for i in range(3)]
        assert await engine.queue.depth() == 0  # type: ignore[attr-defined]
    finally:
        await worker.close()
        await engine.queue.close()  # type: ignore[attr-defined]


async def test_run_execution_passes_the_flow_hint_to_the_runtime() -> None:
    admitted: list[tuple[str, Any]] = []

    class Runtime:
        async def admit(self, execution_id: str, flow: Any = None) -> None:
            admitted.append((execution_id, flow))

    ctx = {CTX_KEY: Runtime()}
    await run_execution(ctx, "e1", flow=["ns", "f", "3"])
    await run_execution(ctx, "e2")
    await run_execution(ctx, "e3", flow=["ns", "f"])  # malformed: ignored, the row is read instead
    assert admitted == [("e1", ("ns", "f", 3)), ("e2", None), ("e3", None)]


# -- submit_many ------------------------------------------------------------------------------------


async def test_submit_many_writes_arq_jobs_and_one_wake_up(redis_url: str, queue: str) -> None:
    import redis.asyncio as aioredis

    listener = aioredis.Redis.from_url(redis_url)
    pubsub = listener.pubsub()
    producer = ArqQueue(redis_url, queue)
    pool = await arq_pool(redis_url, queue)
    try:
        await pubsub.subscribe(wake_channel(queue))
        assert (await pubsub.get_message(timeout=5))["type"] == "subscribe"  # type: ignore[index]

        hints = {"a": ("ns", "one", 3), "c": ("ns", "two", 1)}
        await producer.submit_many(["a", "b", "c"], hints=hints)

        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
        assert message is not None and message["data"] == b"1"
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None  # only one

        entries = await pool.zrange(queue, 0, -1, withscores=True)
        assert len(entries) == 3
        jobs = {}
        for raw_id, score in entries:
            job_id = raw_id.decode()
            payload = await pool.get(job_key_prefix + job_id)
            assert payload is not None
            assert await pool.pttl(job_key_prefix + job_id) > 0  # expires, as arq's jobs do
            job = deserialize_job(payload)  # arq's own reader
            assert job.function == JOB_FUNCTION
            assert job_id.startswith(f"{job.args[0]}:")
            assert job.enqueue_time is not None
            assert score == pytest.approx(job.enqueue_time.timestamp() * 1000, abs=1)  # due now
            jobs[job.args[0]] = (tuple(job.args), job.kwargs)
        assert jobs == {
            "a": (("a",), {"flow": ["ns", "one", 3]}),
            "b": (("b",), {}),
            "c": (("c",), {"flow": ["ns", "two", 1]}),
        }
        assert await producer.depth() == 3

        # every submit is a new job, even for the same execution (never deduplicated)
        await producer.submit("b")
        await producer.submit("b")
        assert await producer.depth() == 5
        assert len([j for j in await job_ids(pool, queue) if j.startswith("b:")]) == 3

        # a deferred submit wakes nobody (it is not due)
        while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1) is not None:
            pass
        await producer.submit_many(["d"], delay=30)
        assert await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.3) is None
        assert await producer.depth() == 6
    finally:
        await pubsub.aclose()
        await listener.aclose()
        await pool.aclose()
        await producer.close()


async def test_worker_receives_the_ids_and_hints_that_submit_many_wrote(redis_url: str, queue: str) -> None:
    recorder = Recorder()
    async with worker_and_producer(redis_url, queue, recorder) as (worker, producer):
        await producer.submit_many(["a", "b"], hints={"a": ("ns", "one", 3)})
        await worker._poll_iteration()
        await settle(worker)
        assert sorted(recorder.received) == [("a", {"flow": ["ns", "one", 3]}), ("b", {})]
        assert await producer.depth() == 0


# -- the poll ---------------------------------------------------------------------------------------


async def test_unknown_function_is_dropped_and_others_still_run(
    redis_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    worker = await fake_worker(redis_url, queue, recorder)
    pool = await arq_pool(redis_url, queue)
    try:
        unknown = await pool.enqueue_job("not_a_hub_function", "x")
        known = await pool.enqueue_job(JOB_FUNCTION, "e1")
        # and a payload nobody can read
        await pool.set(job_key_prefix + "garbled", b"\x00not a job")
        await pool.zadd(queue, {"garbled": 0})
        assert unknown is not None and known is not None
        assert await pool.zcard(queue) == 3

        with caplog.at_level(logging.ERROR, logger="hub.service.queue_arq"):
            await worker._poll_iteration()
        await settle(worker)

        assert recorder.received == [("e1", {})]
        assert await pool.zcard(queue) == 0
        for job_id in (unknown.job_id, known.job_id, "garbled"):
            assert not await pool.exists(job_key_prefix + job_id)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR and r.name == "hub.service.queue_arq"]
        dropped = [r.getMessage() for r in errors]
        assert any(unknown.job_id in m and "not_a_hub_function" in m for m in dropped), dropped
        assert any("garbled" in m for m in dropped), dropped
        assert list(worker.tasks) == [known.job_id]  # only the known job became a task
    finally:
        await pool.aclose()
        await worker.close()


async def test_job_in_progress_elsewhere_is_left_alone(redis_url: str, queue: str) -> None:
    recorder = Recorder()
    worker = await fake_worker(redis_url, queue, recorder)
    pool = await arq_pool(redis_url, queue)
    try:
        busy = await pool.enqueue_job(JOB_FUNCTION, "busy", _job_id=f"busy-{queue}")
        free = await pool.enqueue_job(JOB_FUNCTION, "free")
        assert busy is not None and free is not None
        await pool.set(in_progress_key_prefix + busy.job_id, b"1", px=60_000)  # another arq consumer has it

        await worker._poll_iteration()
        await settle(worker)

        assert recorder.received == [("free", {})]
        assert await job_ids(pool, queue) == [busy.job_id]
        assert await pool.exists(job_key_prefix + busy.job_id)
    finally:
        await pool.delete(in_progress_key_prefix + f"busy-{queue}")
        await pool.aclose()
        await worker.close()


async def test_deferred_job_waits_until_due(redis_url: str, queue: str) -> None:
    recorder = Recorder()
    worker = await fake_worker(redis_url, queue, recorder, poll_delay=5.0)
    producer = ArqQueue(redis_url, queue)
    pool = await arq_pool(redis_url, queue)
    delay = 0.5
    try:
        await producer.submit_many(["later"], delay=delay)
        await producer.submit_many(["now"])
        [(later_job, due_ms)] = [
            (m.decode(), s) for m, s in await pool.zrange(queue, 0, -1, withscores=True) if m.startswith(b"later:")
        ]

        await worker._poll_iteration()
        await settle(worker)

        assert recorder.received == [("now", {})]  # the due one only
        assert await job_ids(pool, queue) == [later_job]
        assert await pool.exists(job_key_prefix + later_job)
        assert worker._next_due_ms == due_ms  # the poll said when the deferred job is due
        idle = worker._idle_time()
        assert 0 < idle <= delay  # sleeps until then, not the 5 s poll_delay

        await asyncio.sleep(max(0.0, due_ms / 1000 - time.time()) + 0.2)
        await worker._poll_iteration()
        await settle(worker)

        assert recorder.received == [("now", {}), ("later", {})]
        assert await pool.zcard(queue) == 0
        assert not await pool.exists(job_key_prefix + later_job)
        assert worker._next_due_ms is None and worker._idle_time() == 5.0
    finally:
        await pool.aclose()
        await producer.close()
        await worker.close()


async def test_poll_takes_only_what_there_is_room_for(redis_url: str, queue: str) -> None:
    gate = asyncio.Event()
    recorder = Recorder(gate)
    async with worker_and_producer(redis_url, queue, recorder, max_jobs=64, capacity=lambda: 2) as (worker, producer):
        ids = [f"e{i}" for i in range(5)]
        await producer.submit_many(ids)
        assert worker.room() == 2

        await worker._poll_iteration()
        await asyncio.sleep(0)  # the job tasks start (and wait at the gate)
        assert len(worker.tasks) == 2 and len(recorder.received) == 2
        assert await producer.depth() == 3
        assert worker.room() == 0

        await worker._poll_iteration()  # full: takes nothing
        assert len(worker.tasks) == 2 and await producer.depth() == 3

        gate.set()
        await settle(worker)
        await worker._poll_iteration()  # the finished jobs are let go: room for 2 more
        await settle(worker)
        assert len(recorder.received) == 4 and await producer.depth() == 1
        await worker._poll_iteration()
        await settle(worker)
        assert sorted(i for i, _ in recorder.received) == ids
        assert await producer.depth() == 0


async def test_a_freed_slot_wakes_the_worker_only_when_its_last_poll_left_jobs_behind(
    redis_url: str, queue: str
) -> None:
    """A poll that found fewer due jobs than it had room for saw the queue empty: a slot freeing
    then needs no poll (a new job brings its own wake-up). One that filled its room may have left
    jobs behind: a freed slot polls again at once."""
    async with worker_and_producer(redis_url, queue, Recorder(), max_jobs=64, capacity=lambda: 2) as (worker, producer):
        await producer.submit_many(["a"])
        await worker._poll_iteration()  # room for 2, found 1: the queue is empty
        await settle(worker)
        worker._wake.clear()
        worker.wake()
        assert not worker._wake.is_set()

        await producer.submit_many(["b", "c", "d"])
        await worker._poll_iteration()  # room for 2, took 2: "d" is left
        assert await producer.depth() == 1
        worker._wake.clear()
        worker.wake()
        assert worker._wake.is_set()


async def test_worker_that_may_not_pick_jobs_takes_none(redis_url: str, queue: str) -> None:
    recorder = Recorder()
    async with worker_and_producer(redis_url, queue, recorder) as (worker, producer):
        await producer.submit_many(["a", "b"])
        worker.allow_pick_jobs = False  # stopping
        await worker._poll_iteration()
        assert recorder.received == [] and worker.tasks == {}
        assert await producer.depth() == 2


async def test_full_worker_does_not_poll_again_at_once(redis_url: str, queue: str) -> None:
    """A full worker with due jobs left on the queue (for idle workers) waits for room or a
    wake-up; its idle time must not be 0, or ``main()`` polls Redis in a tight loop."""
    gate = asyncio.Event()  # never set: the job stays held
    async with worker_and_producer(
        redis_url, queue, Recorder(gate), max_jobs=64, capacity=lambda: 1, poll_delay=0.5
    ) as (worker, producer):
        await producer.submit_many(["a", "b", "c"])
        await worker._poll_iteration()
        await asyncio.sleep(0)
        assert worker.room() == 0 and await producer.depth() == 2
        assert worker._idle_time() > 0


async def test_close_ends_held_jobs_and_closes_the_pool_without_a_deprecation_warning(
    redis_url: str, queue: str
) -> None:
    import warnings

    gate = asyncio.Event()  # never set: the job is still held when the worker closes
    worker = await fake_worker(redis_url, queue, Recorder(gate))
    producer = ArqQueue(redis_url, queue)
    try:
        await producer.submit_many(["held"])
        await worker._poll_iteration()  # also records arq's health-check key
        await asyncio.sleep(0)
        (held,) = worker.tasks.values()
        pool = worker.pool
        assert await pool.exists(worker.health_check_key)
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)
            await worker.close()
        assert held.cancelled() and worker._pool is None
        assert not await producer._pool.exists(worker.health_check_key)  # type: ignore[union-attr]
        await worker.close()  # twice is harmless
    finally:
        await producer.close()


# -- Redis going away -----------------------------------------------------------------------------


async def test_a_worker_outlives_redis_not_answering(redis_url: str, queue: str, caplog: pytest.LogCaptureFixture) -> None:
    """Polls that fail (the connection dropped, Redis restarting) are logged once and retried at
    the poll delay; the worker goes on and takes the job once Redis answers again."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from hub.service.queue_arq import TAKE_SCRIPT

    recorder = Recorder()
    worker = await fake_worker(redis_url, queue, recorder, poll_delay=0.05)
    real = worker.pool.register_script(TAKE_SCRIPT)
    failures = 3

    async def flaky(**kwargs: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise RedisConnectionError("Connection closed by server.")
        return await real(**kwargs)

    worker._take = flaky
    submitter = ArqQueue(redis_url, queue)
    await submitter.submit("exec-after-outage")
    await submitter.close()
    with caplog.at_level("WARNING", logger="hub.service.queue_arq"):
        # the recovery is logged before the jobs it took start; waiting for it too keeps the
        # check independent of that order
        await run_main_until_received(worker, recorder, also=lambda: "answers again" in caplog.text)
    assert [r[0] for r in recorder.received] == ["exec-after-outage"]
    assert failures == 0
    assert caplog.text.count("does not answer") == 1 and caplog.text.count("answers again") == 1


async def test_a_cancel_that_lands_as_a_poll_ends_stops_the_worker(redis_url: str, queue: str) -> None:
    """A cancel arriving just as a poll has finished, before ``main`` resumed, must stop the worker
    (Python 3.11's ``asyncio.wait_for`` returned the poll's result instead, and the worker, its
    pool and its process never stopped: seen as a CI run hanging on shutdown)."""
    worker = await fake_worker(redis_url, queue, Recorder(), poll_delay=0.05)
    beats = 0
    main: asyncio.Task[None] | None = None

    async def heart_beat() -> None:  # the last thing a poll does: no await after this point
        nonlocal beats
        beats += 1
        if beats == 2:
            assert main is not None
            asyncio.get_running_loop().call_soon(main.cancel)

    worker.heart_beat = heart_beat  # type: ignore[method-assign]
    main = asyncio.create_task(worker.main())
    try:
        done, _ = await asyncio.wait([main], timeout=5)
    finally:
        main.cancel()
        await asyncio.wait([main], timeout=5)
        await worker.pool.aclose()
    assert done == {main} and main.cancelled() and beats == 2


async def test_a_job_that_raises_is_logged_and_the_worker_goes_on(
    redis_url: str, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []

    async def job(ctx: dict[str, Any], execution_id: str, **kwargs: Any) -> None:
        seen.append(execution_id)
        if execution_id == "bad":
            raise RuntimeError("job body broke")

    worker = await fake_worker(redis_url, queue, job, poll_delay=0.05)
    submitter = ArqQueue(redis_url, queue)
    try:
        await submitter.submit_many(["bad", "good"])
        with caplog.at_level("ERROR", logger="hub.service.queue_arq"):
            await worker._poll_iteration()
            await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
            await worker._poll_iteration()  # collects the finished jobs: must not raise
        await submitter.submit("later")
        await worker._poll_iteration()
        await settle(worker)
    finally:
        await submitter.close()
        await worker.pool.aclose()
    assert sorted(seen) == ["bad", "good", "later"]
    assert "job bad" in caplog.text and "job body broke" in caplog.text


async def test_a_poll_that_gets_no_answer_is_cut_off_and_retried(
    redis_url: str, queue: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hub.service import queue_arq
    from hub.service.queue_arq import TAKE_SCRIPT

    monkeypatch.setattr(queue_arq, "POLL_TIMEOUT", 0.2)
    recorder = Recorder()
    worker = await fake_worker(redis_url, queue, recorder, poll_delay=0.05)
    real = worker.pool.register_script(TAKE_SCRIPT)
    hangs = 1

    async def silent_once(**kwargs: Any) -> Any:
        nonlocal hangs
        if hangs:
            hangs -= 1
            await asyncio.Event().wait()  # connected, never answered
        return await real(**kwargs)

    worker._take = silent_once
    submitter = ArqQueue(redis_url, queue)
    await submitter.submit("exec-after-silence")
    await submitter.close()
    with caplog.at_level("WARNING", logger="hub.service.queue_arq"):
        await run_main_until_received(worker, recorder)
    assert [r[0] for r in recorder.received] == ["exec-after-silence"]
    assert "does not answer" in caplog.text and "TimeoutError" in caplog.text
