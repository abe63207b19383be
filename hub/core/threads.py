"""Run a blocking function in a worker thread, cheaply, and await its result on the event loop.

What :func:`asyncio.to_thread` does, for the hot path of a step: a ``python`` step calling a sync
function hands it to a thread so a function that blocks never stalls the loop (other executions,
the API, heartbeats). ``to_thread`` goes through the loop's default executor — a concurrent
future chained to an asyncio one, a work item, an idle semaphore — which cost more CPU than the
rest of a durable step. Here each worker thread has an inbox of its own, idle workers wait on a
stack (the one that finished last takes the next call, so a sequential flow keeps one warm
thread), and the result comes back with a single ``call_soon_threadsafe``.

What callers rely on is kept: the function runs in a copy of the caller's context (the current
trace span, logging context), its exception is raised in the caller, and cancelling the caller
(a timeout, a kill) returns at once — a call that has not started yet never runs; one that has
runs to its end in its thread, its result dropped, since a thread cannot be interrupted.
At most :attr:`ThreadPool.max_workers` calls run at once (``to_thread``'s default); more wait.
The threads are daemons: a function still running when the process exits (one that outlived
its step's timeout) does not hold the exit up.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")


class _Call:
    """One function call handed to a worker, and the future its caller awaits."""

    __slots__ = ("loop", "future", "context", "fn", "args", "kwargs", "abandoned")

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]):
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        self.context = contextvars.copy_context()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.abandoned = False  # the caller was cancelled: a call not yet started is skipped

    def execute(self) -> tuple[Any, BaseException | None]:
        """Run the function (in the worker thread): its result, or what it raised."""
        try:
            return self.context.run(self.fn, *self.args, **self.kwargs), None
        except StopIteration as exc:  # a future refuses it (it would end a generator): say what it was
            error = RuntimeError(f"the function raised StopIteration: {exc}")
            error.__cause__ = exc
            return None, error
        except BaseException as exc:  # as to_thread: what the function raised is the caller's to handle
            return None, exc

    def post(self, result: Any, error: BaseException | None) -> None:
        """Hand the outcome to the caller's loop (from the worker thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for this call any more
            self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class _Worker:
    """A thread that runs calls from its inbox, then from the pool's backlog, until none is left."""

    def __init__(self, pool: ThreadPool, first: _Call, number: int):
        self.pool = pool
        self.inbox: SimpleQueue[_Call] = SimpleQueue()
        self.inbox.put(first)  # (not an argument of the thread, which would keep it for good)
        self.thread = threading.Thread(target=self._work, name=f"hub-sync-{number}", daemon=True)
        self.thread.start()

    def _work(self) -> None:
        call: _Call | None = None
        while True:
            if call is None:
                call = self.inbox.get()
            if call.abandoned:  # its caller is gone: nobody waits for it
                call = self.pool._next(self)
                continue
            result, error = call.execute()
            upcoming = self.pool._next(self)  # idle (or the next call) before the caller wakes up:
            call.post(result, error)  # its next call then finds this warm thread, not a new one
            call, result, error = upcoming, None, None  # an idle thread keeps no output alive


class ThreadPool:
    """Worker threads for blocking calls: at most ``max_workers`` at once, started as needed."""

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a child process has none of the threads

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._backlog: deque[_Call] = deque()
        self._started = 0

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread, in a copy of the current context."""
        call = _Call(asyncio.get_running_loop(), fn, args, kwargs)
        self._submit(call)
        try:
            return await call.future  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            call.abandoned = True
            raise

    def _submit(self, call: _Call) -> None:
        with self._lock:
            worker = self._idle.pop() if self._idle else None
            if worker is None and self._started >= self.max_workers:
                self._backlog.append(call)  # all busy: the first to finish takes it
                return
            if worker is None:
                self._started += 1
                number = self._started
        if worker is not None:
            worker.inbox.put(call)
            return
        try:
            _Worker(self, call, number)
        except BaseException:  # no thread could be started (a resource limit): the caller is told
            with self._lock:
                self._started -= 1
            raise

    def _next(self, worker: _Worker) -> _Call | None:
        """The call a worker that just finished one takes next; None: it is idle now."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            self._idle.append(worker)
            return None


POOL = ThreadPool()
"""The process's pool for blocking calls on a step's path."""


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await run_in_thread(fn, *args)``: as :func:`asyncio.to_thread`, cheaper (see the module)."""
    return await POOL.run(fn, *args, **kwargs)
