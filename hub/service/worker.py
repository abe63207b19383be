"""``hub worker``: runs executions queued on Redis, on any number of machines.

Each arq job carries an execution id and is short: it waits for a free slot in this process,
starts the execution as an asyncio task and returns. So arq never cancels an execution at a
job timeout, a finished job leaves the queue at once, and a busy worker leaves new jobs on Redis
for idle ones: a worker takes as many jobs as it has free slots, plus ``prefetch`` that wait here
for one, all claimed in one round trip.

Nothing is lost when a worker dies: every step is committed to the store before the next
starts, and every worker sweeps the store at start and every ``sweep_interval`` seconds for
executions whose owner is gone (same host: by pid; other hosts: by a stale heartbeat), paused
executions whose timer is due, and queued executions nobody picked up (a submit lost between the
database and Redis). Those are submitted again and continue after their last committed step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arq.worker import func

from hub.engine.runner import STALE_HEARTBEAT, Engine
from hub.engine.states import State
from hub.service.health import AliveFile
from hub.service.queue_arq import JOB_FUNCTION, ArqQueue, HubWorker, redis_settings
from hub.service.runtime import settle_heap

log = logging.getLogger(__name__)

CTX_KEY = "hub"


@dataclass
class WorkerOptions:
    concurrency: int = 64  # executions run at once by this process
    prefetch: int = 2  # arq jobs waiting here for a free slot (a busy worker leaves the rest to others)
    poll_delay: float = 0.5  # fallback poll when no wake-up arrives (deferred jobs are exact)
    sweep_interval: float = 10.0
    orphan_age: float = 30.0  # a QUEUED execution nobody touched for this long is submitted again
    heartbeat_interval: float = 5.0
    grace: float = 30.0  # on SIGTERM: wait this long for running executions, then hand them over
    burst: bool = False  # stop when the queue is empty (tests, batch jobs)
    alive_file: Path | None = None  # touched after polls Redis answered, for ``hub health``


@dataclass
class WorkerRuntime:
    """What the job function needs, passed in arq's ctx under :data:`CTX_KEY`."""

    engine: Engine
    options: WorkerOptions
    active: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    again: set[str] = field(default_factory=set)
    slots: asyncio.Semaphore = field(init=False)
    on_free: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.options.concurrency)

    async def admit(self, execution_id: str, flow: tuple[str, str, int] | None = None) -> None:
        """Start ``execution_id`` here once a slot is free (coalesced when it already runs here).
        ``flow``: the revision it runs, when the submitter knew it (saves a statement)."""
        if execution_id in self.active:
            self.again.add(execution_id)  # run it once more when the current run returns
            return
        await self.slots.acquire()
        if execution_id in self.active:
            self.slots.release()
            self.again.add(execution_id)
            return
        task = asyncio.create_task(self._run(execution_id, flow), name=f"execution {execution_id}")
        self.active[execution_id] = task

    async def _run(self, execution_id: str, flow: tuple[str, str, int] | None) -> None:
        try:
            while True:
                self.again.discard(execution_id)
                try:
                    await self.engine.run(execution_id, flow)
                    flow = None  # a second run (coalesced) reads the row afresh
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("execution %s crashed in the engine", execution_id)
                if execution_id not in self.again:
                    return
        finally:
            self.active.pop(execution_id, None)
            self.slots.release()
            if self.on_free is not None:
                self.on_free()  # a slot is free: the worker may take another job now

    def room(self) -> int:
        """Jobs this process should hold now: its free slots plus ``prefetch`` waiting for one."""
        return self.options.concurrency - len(self.active) + self.options.prefetch

    async def sweep(self) -> list[str]:
        """Submit executions that nobody runs any more; returns their ids."""
        engine = self.engine
        now = time.time()
        found: list[str] = []
        for execution in engine.store.unfinished_executions():
            execution_id = execution["id"]
            if execution_id in self.active:
                continue
            owner = execution["owner"]
            if owner is None:
                if now - (execution["updated_at"] or 0) < self.options.orphan_age:
                    continue  # most likely still on the queue
            elif owner != engine.owner and not _owner_gone(execution):
                continue
            found.append(execution_id)
        found.extend(engine.store.due_paused(engine.clock.time()))
        for execution_id in found:
            await engine.queue.submit(execution_id)
        for sweeper in engine.sweepers:  # e.g. approvals decided while nobody could resume them
            try:
                found.extend(await sweeper())
            except Exception:
                log.exception("sweeper %r failed", sweeper)
        if found:
            log.info("sweep: submitted %d interrupted or orphaned execution(s)", len(found))
        return found

    async def drain(self, timeout: float) -> list[str]:
        """Wait up to ``timeout`` for running executions; returns those still running."""
        deadline = time.monotonic() + timeout
        while self.active and time.monotonic() < deadline:
            await asyncio.wait(list(self.active.values()), timeout=deadline - time.monotonic())
        return list(self.active)

    def release(self, execution_ids: list[str]) -> None:
        """Give up ownership so another worker continues these after their last committed step."""
        for execution_id in execution_ids:
            current = self.engine.store.get_execution(execution_id)
            if current["owner"] == self.engine.owner and current["state"] == State.RUNNING:
                self.engine.store.update_execution(execution_id, owner=None, updated_at=0.0)


def _owner_gone(execution: dict[str, Any]) -> bool:
    from hub.store.store import owner_is_alive

    alive = owner_is_alive(execution["owner"])
    if alive is None:
        return time.time() - (execution["heartbeat_at"] or 0) > STALE_HEARTBEAT
    return not alive


async def run_execution(ctx: dict[str, Any], execution_id: str, flow: list[Any] | None = None) -> None:
    """The arq job: hand the execution to this worker's runtime."""
    runtime: WorkerRuntime = ctx[CTX_KEY]
    hint = (str(flow[0]), str(flow[1]), int(flow[2])) if flow and len(flow) == 3 else None
    await runtime.admit(execution_id, hint)


def make_worker(runtime: WorkerRuntime, alive: AliveFile | None = None) -> HubWorker:
    queue = runtime.engine.queue
    if not isinstance(queue, ArqQueue):
        raise RuntimeError("hub worker needs HUB_REDIS_URL (the engine has no Redis queue)")
    options = runtime.options
    worker = HubWorker(
        functions=[func(run_execution, name=JOB_FUNCTION, max_tries=1000)],
        queue_name=queue.queue_name,
        redis_settings=redis_settings(queue.redis_url),
        max_jobs=options.concurrency + options.prefetch,
        capacity=runtime.room,
        on_poll=alive.beat if alive is not None else None,
        job_timeout=3600,  # a job only waits for a slot; the execution runs outside it
        keep_result=0,
        poll_delay=options.poll_delay,
        handle_signals=False,
        ctx={CTX_KEY: runtime},
        burst=options.burst,
        log_results=False,
    )
    runtime.on_free = worker.wake
    return worker


async def serve_worker(engine: Engine, options: WorkerOptions | None = None, *, hard_exit: bool = False) -> None:
    """Run a worker until SIGTERM/SIGINT (or, with ``burst``, until the queue is empty).

    On a stop signal the worker takes no new jobs and waits ``grace`` seconds for what it runs.
    Executions still running then are released in the store for other workers and, with
    ``hard_exit``, the process ends at once (cancelling them would mark them KILLED).
    """
    options = options or WorkerOptions()
    runtime = WorkerRuntime(engine, options)
    alive = AliveFile(options.alive_file) if options.alive_file is not None else None
    worker = make_worker(runtime, alive)
    if hard_exit:  # the hub worker process, not a worker inside tests
        settle_heap()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # NotImplementedError: no signal handlers on this platform's loop (Windows);
        # RuntimeError: not the main thread (tests); SIGTERM then ends the process as usual
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    from hub.triggers.flows import FlowTriggers

    flow_triggers = FlowTriggers(engine).attach()  # flows that start when another one ends here
    await runtime.sweep()
    main = asyncio.create_task(worker.main(), name="arq worker")
    background = [
        asyncio.create_task(engine.heartbeat_loop(options.heartbeat_interval), name="heartbeat"),
        asyncio.create_task(_every(options.sweep_interval, runtime.sweep), name="sweep"),
    ]
    stopper = asyncio.create_task(stop.wait())
    log.info("worker %s on queue %s (concurrency %d)", engine.owner, worker.queue_name, options.concurrency)
    try:
        await asyncio.wait([main, stopper], return_when=asyncio.FIRST_COMPLETED)
        worker.allow_pick_jobs = False
        if main.done():
            main.result()  # burst mode ended, or the worker failed: raise its error
        else:
            main.cancel()
            await asyncio.gather(main, return_exceptions=True)
        if options.burst:
            await runtime.drain(float("inf"))
        left = await runtime.drain(options.grace)
        if left:
            log.warning("handing %d running execution(s) over to other workers", len(left))
            runtime.release(left)
            if hard_exit:
                if alive is not None:  # the finally below does not run after os._exit
                    alive.remove()
                logging.shutdown()
                os._exit(0)
            for task in list(runtime.active.values()):
                task.cancel()
            await asyncio.gather(*runtime.active.values(), return_exceptions=True)
    finally:
        stopper.cancel()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, stopper, return_exceptions=True)
        flow_triggers.detach()
        await flow_triggers.drain()
        if alive is not None:
            alive.remove()
        await worker.close()


async def _every(interval: float, call: Any) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await call()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("periodic %s failed", getattr(call, "__name__", call))
