"""Where executions wait to run. The embedded default is an in-process asyncio queue; the
scaled-out deployment puts them on Redis (arq) for ``hub worker`` processes."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any, Protocol

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_QUEUE", "LocalQueue", "Queue", "queue_name"]

DEFAULT_QUEUE = "hub:queue"
QUEUE_NAME_ENV = "HUB_QUEUE_NAME"


class Queue(Protocol):
    """Where executions wait to run (:class:`LocalQueue`, :mod:`hub.service.queue_arq`)."""

    async def submit(self, execution_id: str, delay: float = 0.0) -> None: ...


class Runner(Protocol):
    """What a queue calls to run an execution (the engine)."""

    async def run(self, execution_id: str) -> dict[str, Any]: ...


def queue_name() -> str:
    """The deployment's name for its queue (the arq key on Redis): ``HUB_QUEUE_NAME`` or ``hub:queue``."""
    return os.environ.get(QUEUE_NAME_ENV) or DEFAULT_QUEUE


class LocalQueue:
    """Runs submitted executions as asyncio tasks in this process, at most ``limit`` at once."""

    def __init__(self, engine: Runner, limit: int = 64):
        self.engine = engine
        self.semaphore = asyncio.Semaphore(limit)
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.timers: set[asyncio.TimerHandle] = set()
        self.again: set[str] = set()  # submitted by their own run (a walk that woke itself): run once more

    async def submit(self, execution_id: str, delay: float = 0.0) -> None:
        if delay > 0:
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle

            def fire() -> None:
                self.timers.discard(handle)
                self._spawn(execution_id)

            handle = loop.call_later(delay, fire)
            self.timers.add(handle)
            return
        self._spawn(execution_id)

    def _spawn(self, execution_id: str) -> None:
        existing = self.tasks.get(execution_id)
        if existing is not None and not existing.done():
            if existing is asyncio.current_task():  # its own walk woke it: a new run once this one returns
                self.again.add(execution_id)
            return
        task = asyncio.create_task(self._run(execution_id), name=f"execution {execution_id}")
        self.tasks[execution_id] = task

    async def _run(self, execution_id: str) -> None:
        async with self.semaphore:
            try:
                await self.engine.run(execution_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("execution %s crashed in the engine", execution_id)
            finally:
                current = self.tasks.get(execution_id)
                if current is asyncio.current_task():
                    self.tasks.pop(execution_id, None)
                    if execution_id in self.again:
                        self.again.discard(execution_id)
                        self._spawn(execution_id)

    def cancel(self, execution_id: str) -> bool:
        task = self.tasks.get(execution_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def drain(self, include_timers: bool = True) -> None:
        """Wait until nothing is running (and, with ``include_timers``, nothing is scheduled)."""
        while True:
            pending = [t for t in self.tasks.values() if not t.done()]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
                continue
            if include_timers and self.timers:
                await asyncio.sleep(0.05)
                continue
            return

    async def close(self) -> None:
        for handle in list(self.timers):
            handle.cancel()
        self.timers.clear()
        for task in list(self.tasks.values()):
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
