"""The pool that runs blocking functions off the event loop (hub.core.threads): the loop keeps
running, the caller's context reaches the function, errors and cancellation reach the caller."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import os
import sys
import threading
import time
import weakref
from typing import Any

import pytest

from hub.core.threads import ThreadPool

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


def test_a_blocking_function_leaves_the_loop_running() -> None:
    pool = ThreadPool()
    release = threading.Event()

    async def main() -> tuple[bool, int]:
        call = asyncio.ensure_future(pool.run(release.wait, 5))
        ticks = 0
        for _ in range(5):  # the loop turns while the function blocks
            await asyncio.sleep(0.01)
            ticks += 1
        release.set()
        return await call, ticks

    assert asyncio.run(main()) == (True, 5)


def test_the_function_runs_in_a_copy_of_the_callers_context() -> None:
    pool = ThreadPool()

    def swap() -> str:
        seen = WHO.get()
        WHO.set("the function")
        return seen

    async def main() -> tuple[str, str]:
        WHO.set("the step")
        seen = await pool.run(swap)
        return seen, WHO.get()

    assert asyncio.run(main()) == ("the step", "the step")  # what it sets stays in its copy


def test_what_the_function_raises_is_raised_in_the_caller() -> None:
    pool = ThreadPool()

    def fail(message: str) -> None:
        raise KeyError(message)

    def stop() -> None:
        raise StopIteration("done")

    with pytest.raises(KeyError, match="lost"):
        asyncio.run(pool.run(fail, "lost"))
    with pytest.raises(RuntimeError, match="StopIteration: done"):  # not a future that never ends
        asyncio.run(asyncio.wait_for(pool.run(stop), 5))
    assert asyncio.run(pool.run(lambda: "still serving")) == "still serving"


def test_a_cancelled_caller_returns_at_once_and_a_call_not_started_never_runs() -> None:
    pool = ThreadPool(max_workers=1)
    release, ran = threading.Event(), []
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
        busy = asyncio.ensure_future(pool.run(release.wait, 5))
        queued = asyncio.ensure_future(pool.run(ran.append, "queued"))
        await asyncio.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await busy
        assert time.monotonic() - started < 2
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        release.set()
        assert await pool.run(ran.append, "next") is None  # the worker is free again
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert ran == ["next"]
    assert errors == []  # the dropped result of the abandoned call is no error


def test_at_most_max_workers_run_at_once_and_the_rest_wait() -> None:
    pool = ThreadPool(max_workers=2)
    lock, state = threading.Lock(), {"now": 0, "most": 0}

    def work() -> str:
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return threading.current_thread().name

    async def main() -> list[str]:
        return await asyncio.gather(*(pool.run(work) for _ in range(5)))

    names = asyncio.run(main())
    assert state["most"] == 2
    assert len(set(names)) == 2


def test_calls_one_after_another_keep_one_thread() -> None:
    pool = ThreadPool()

    async def main() -> set[str]:
        return {await pool.run(lambda: threading.current_thread().name) for _ in range(50)}

    assert len(asyncio.run(main())) == 1


def test_a_call_that_outlives_its_loop_does_not_stop_the_worker() -> None:
    pool = ThreadPool(max_workers=1)
    release = threading.Event()

    async def abandon() -> None:
        call = asyncio.ensure_future(pool.run(release.wait, 5))
        await asyncio.sleep(0.01)
        call.cancel()

    asyncio.run(abandon())  # the loop is closed while the function still runs
    release.set()
    assert asyncio.run(asyncio.wait_for(pool.run(lambda: "served"), 5)) == "served"


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_child_starts_threads_of_its_own() -> None:
    pool = ThreadPool()
    assert asyncio.run(pool.run(lambda: 1)) == 1  # the parent has an idle worker now
    pid = os.fork()
    if pid == 0:  # the child: that worker's thread does not exist here
        code = 1
        try:
            code = 0 if asyncio.run(asyncio.wait_for(pool.run(lambda: 2), 5)) == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_an_idle_worker_keeps_nothing_of_its_last_call_alive() -> None:
    pool = ThreadPool()

    class Output:
        pass

    async def main() -> weakref.ref[Output]:
        output = await pool.run(Output)
        return weakref.ref(output)

    ref = asyncio.run(main())
    deadline = time.monotonic() + 2
    while ref() is not None and time.monotonic() < deadline:  # (the worker lets go as it goes idle)
        time.sleep(0.01)
        gc.collect()
    assert ref() is None


def test_the_fork_hook_keeps_no_pool_alive() -> None:
    ref = weakref.ref(ThreadPool())  # one hook serves every pool: a pool has none holding it
    gc.collect()
    assert ref() is None


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_every_pool_starts_afresh_in_a_forked_child() -> None:
    pools = [ThreadPool(), ThreadPool(max_workers=1)]

    async def each(tag: int) -> list[int]:
        return [await asyncio.wait_for(pool.run(lambda n=n: n + tag), 5) for n, pool in enumerate(pools)]

    assert asyncio.run(each(0)) == [0, 1]  # both have an idle worker whose thread a child lacks
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if asyncio.run(each(10)) == [10, 11] else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.skipif(sys.platform != "linux" or len(os.sched_getaffinity(0)) < 2, reason="Linux, two cores")
def test_a_worker_woken_on_another_core_waits_on_its_callers_core_and_runs_unpinned() -> None:
    pool = ThreadPool()
    everywhere = os.sched_getaffinity(0)
    here, there = sorted(everywhere)[:2]

    def where() -> tuple[int, set[int]]:
        return threading.get_native_id(), os.sched_getaffinity(0)

    async def main() -> None:
        worker, seen = await pool.run(where)  # started unpinned, as the caller is
        assert seen == everywhere
        os.sched_setaffinity(0, {here})  # the caller stays on one core, and the worker is
        os.sched_setaffinity(worker, {there})  # on another, as the scheduler puts it by an idle core
        await pool.run(where)
        deadline = time.monotonic() + 5  # (it pins itself as it goes idle, after answering)
        while os.sched_getaffinity(worker) != {here} and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert os.sched_getaffinity(worker) == {here}  # idle, it waits on its caller's core
        assert await pool.run(where) == (worker, everywhere)  # and lets go before it runs a function

    try:
        asyncio.run(main())
    finally:
        os.sched_setaffinity(0, everywhere)


def test_a_worker_that_cannot_go_back_to_its_cores_is_let_go_on_every_core(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unpinning to the cores the worker had can fail (the process's cores changed meanwhile):
    it then asks for every core, never running the next function pinned to one."""
    from hub.core.threads import _Home

    home = _Home()
    home.allowed, home.pinned = {97, 98}, True  # cores the process no longer has
    calls: list[set[int]] = []

    def setaffinity(_pid: int, cores: Any) -> None:
        calls.append(set(cores))
        if set(cores) == {97, 98}:
            raise OSError("invalid argument")

    monkeypatch.setattr(os, "sched_setaffinity", setaffinity)
    home.woken(caller=0)
    assert calls == [{97, 98}, set(range(os.cpu_count() or 1))]
    assert not home.pinned and home.allowed == set()  # and it pins itself no more
    home.idle(caller=0)
    assert len(calls) == 2
