"""Run a blocking function in a worker thread, cheaply, and await its result on the event loop.

What :func:`asyncio.to_thread` does, for the hot path of a step: a ``python`` step calling a sync
function hands it to a thread so a function that blocks never stalls the loop (other executions,
the API, heartbeats). ``to_thread`` goes through the loop's default executor — a concurrent
future chained to an asyncio one, a work item, an idle semaphore — which cost more CPU than the
rest of a durable step. Here each worker thread has an inbox of its own, idle workers wait on a
stack (the one that finished last takes the next call, so a sequential flow keeps one warm
thread), and the result comes back with a single ``call_soon_threadsafe`` — or with none at all.

The hand-off is what costs, not the Python around it: context switches. A worker waiting on a
lock is woken while the caller still holds the GIL, so it wakes only to sleep again on the GIL,
and the loop, woken by the result, waits for the GIL in turn: up to six switches a call on a 2-core
machine. So a worker sleeps on a file descriptor (an eventfd on Linux, a pipe elsewhere) that the
caller writes to: CPython lets go of the GIL around that write, the woken worker takes it at once,
and a quick function has often returned before the caller's write does. The caller then finds the
result ready and takes it without waiting on the loop at all (no future, no self-pipe, no loop
turn); only when it got there first does it await a future, which the worker settles with
``call_soon_threadsafe``. Which side got there first is decided by a lock taken without blocking.
A call that returned that early does not yield to the loop, as an async function that returns
without awaiting does not; one that blocks lets go of the GIL, and its caller awaits as before.
All this needs the worker woken on its caller's core, which the scheduler does when every core
is busy, not when one is idle: a worker it wakes elsewhere waits on its caller's core for a
while (:class:`_Home`), unpinned again before it runs the next function.

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
import logging
import os
import sys
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


if sys.platform == "linux":
    def _bell() -> tuple[int, int]:
        fd = os.eventfd(0)  # (close-on-exec)
        return fd, fd

    def _ring(fd: int) -> None:
        os.eventfd_write(fd, 1)

    def _wait(fd: int) -> None:
        os.eventfd_read(fd)
else:
    def _bell() -> tuple[int, int]:
        return os.pipe()  # (not inherited)

    def _ring(fd: int) -> None:
        os.write(fd, b"\0")

    def _wait(fd: int) -> None:
        os.read(fd, 1)


def _core_reader() -> Callable[[], int]:
    """The core the calling thread runs on (glibc's or musl's ``sched_getcpu``); -1 where unknown."""
    if sys.platform != "linux":
        return lambda: -1
    try:
        import ctypes

        reader = ctypes.CDLL(None).sched_getcpu
    except (OSError, AttributeError):
        return lambda: -1
    reader.argtypes, reader.restype = [], ctypes.c_int
    return reader  # type: ignore[no-any-return]


_current_core = _core_reader()


class _Home:
    """Where an idle worker waits. The scheduler wakes a thread on an idle core when there is one,
    and a wake-up across cores (with the caches it leaves cold) cost ten times the hand-off on one
    core — the case of a quiet machine. So a worker woken on another core than its caller's waits
    its next idle spells pinned to its caller's core, and is let go as it wakes, before the next
    function runs: that function, and the threads or processes it starts, get every core the
    worker could use when it started. A worker woken on its caller's core is never pinned
    (pinning and letting go cost two system calls a call)."""

    SPELLS = 64  # idle waits pinned after a wake-up across cores, before trying without again

    def __init__(self) -> None:
        self.allowed = os.sched_getaffinity(0) if sys.platform == "linux" else set()
        self.pinned = False
        self.spells = 0

    def woken(self, caller: int) -> None:
        """In the worker, woken for a call from a thread on core ``caller`` (-1: unknown)."""
        if self.pinned:
            self.pinned = False
            if not self._set(self.allowed):  # never left pinned while a function runs
                self._set(set(range(os.cpu_count() or 1)), release=True)
        elif caller >= 0 and caller != _current_core():
            self.spells = self.SPELLS

    def idle(self, caller: int) -> None:
        """In the worker, about to wait for its next call."""
        if self.spells > 0 and caller in self.allowed and len(self.allowed) > 1:
            self.spells -= 1
            self.pinned = self._set({caller})

    def _set(self, cores: set[int], release: bool = False) -> bool:
        try:
            os.sched_setaffinity(0, cores)
        except OSError:  # a sandbox that refuses it, or cores taken away meanwhile: wake as it comes
            self.allowed, self.spells = set(), 0
            if release:  # nothing more to try: the function runs where it can
                log.warning("a hub-sync worker could not be unpinned from core %s", _current_core())
            return False
        return True


class _Call:
    """One function call handed to a worker, and how its outcome gets to its caller."""

    __slots__ = ("loop", "future", "context", "fn", "args", "kwargs", "abandoned", "outcome", "_met", "core")

    def __init__(self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]):
        self.loop = loop
        self.future: asyncio.Future[Any] | None = None  # made only when the caller has to wait
        self.context = contextvars.copy_context()
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.abandoned = False  # the caller was cancelled: a call not yet started is skipped
        self.outcome: tuple[Any, BaseException | None] = (None, None)
        self._met = threading.Lock()
        self.core = _current_core()  # where its worker waits once idle (see _Home)

    def first_here(self) -> bool:
        """True for whichever of the caller (ready to wait) and the worker (done) asks first."""
        return self._met.acquire(blocking=False)

    def execute(self) -> None:
        """Run the function (in the worker thread): its result, or what it raised, is the outcome."""
        try:
            self.outcome = self.context.run(self.fn, *self.args, **self.kwargs), None
        except StopIteration as exc:  # a future refuses it (it would end a generator): say what it was
            error = RuntimeError(f"the function raised StopIteration: {exc}")
            error.__cause__ = exc
            self.outcome = None, error
        except BaseException as exc:  # as to_thread: what the function raised is the caller's to handle
            self.outcome = None, exc

    def take(self) -> Any:
        """The outcome, returned or raised (in the caller)."""
        (result, error), self.outcome = self.outcome, (None, None)
        if error is not None:
            raise error
        return result

    def post(self) -> None:
        """Hand the outcome to the caller waiting on the loop (from the worker thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits for this call any more
            self.loop.call_soon_threadsafe(_settle, self)


def _settle(call: _Call) -> None:
    future, (result, error), call.outcome = call.future, call.outcome, (None, None)
    if future is None or future.done():  # the caller was cancelled meanwhile
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)


class _Worker:
    """A thread that runs calls from its inbox, then from the pool's backlog, until none is left."""

    def __init__(self, pool: ThreadPool, first: _Call, number: int):
        self.pool = pool
        self._in, self._out = _bell()
        self._inbox: _Call | None = None  # one call at a time: a worker gets one only when idle
        self.put(first)  # (not an argument of the thread, which would keep it for good)
        self.thread = threading.Thread(target=self._work, name=f"hub-sync-{number}", daemon=True)
        try:
            self.thread.start()
        except BaseException:
            self.close()
            raise

    def put(self, call: _Call) -> None:
        self._inbox = call
        _ring(self._out)  # without the GIL: the worker can take it as soon as it wakes

    def close(self) -> None:
        """Let go of the descriptors (in a forked child, where the thread does not exist)."""
        for fd in {self._in, self._out}:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _work(self) -> None:
        call: _Call | None = None
        home = _Home()
        while True:
            if call is None:
                _wait(self._in)
                call, self._inbox = self._inbox, None
                assert call is not None
                home.woken(call.core)
            if call.abandoned:  # its caller is gone: nobody waits for it
                call = self.pool._next(self)
                continue
            call.execute()
            upcoming = self.pool._next(self)  # idle (or the next call) before the caller wakes up:
            if not call.first_here():  # its next call then finds this warm thread, not a new one
                call.post()  # the caller is waiting on its future
            if upcoming is None:
                home.idle(call.core)
            call = upcoming  # an idle thread keeps no output alive


class ThreadPool:
    """Worker threads for blocking calls: at most ``max_workers`` at once, started as needed."""

    def __init__(self, max_workers: int | None = None):
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._workers: list[_Worker] = []
        self._reset()
        _POOLS.add(self)

    def _reset(self) -> None:
        """Forget every worker (a forked child has none of their threads), closing what they held."""
        for worker in self._workers:
            worker.close()
        self._workers = []
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._backlog: deque[_Call] = deque()
        self._started = 0

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a worker thread, in a copy of the current context."""
        call = _Call(asyncio.get_running_loop(), fn, args, kwargs)
        self._submit(call)
        if not call.first_here():  # the function has returned already (it ran while we rang)
            return call.take()  # type: ignore[no-any-return]
        call.future = call.loop.create_future()  # before any _settle can run: both run on this loop
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
            worker.put(call)
            return
        try:
            worker = _Worker(self, call, number)
        except BaseException:  # no thread could be started (a resource limit): the caller is told
            with self._lock:
                self._started -= 1
            raise
        with self._lock:
            self._workers.append(worker)

    def _next(self, worker: _Worker) -> _Call | None:
        """The call a worker that just finished one takes next; None: it is idle now."""
        with self._lock:
            if self._backlog:
                return self._backlog.popleft()
            self._idle.append(worker)
            return None


_POOLS: weakref.WeakSet[ThreadPool] = weakref.WeakSet()


def _after_fork() -> None:
    for pool in list(_POOLS):
        pool._reset()


os.register_at_fork(after_in_child=_after_fork)  # one hook for all pools, holding none of them

POOL = ThreadPool()
"""The process's pool for blocking calls on a step's path."""


async def run_in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """``await run_in_thread(fn, *args)``: as :func:`asyncio.to_thread`, cheaper (see the module)."""
    return await POOL.run(fn, *args, **kwargs)
