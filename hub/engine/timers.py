"""One timer for the many checkpoints of an event loop that wait for their start to be due.

A side-effecting step's RUNNING row is written only once it has run ``delay`` seconds (see
:class:`hub.engine.leaf.Checkpoint`); nearly every step ends before that. A timer per step, made
and then cancelled, cost more than the rest of the checkpoint (a handle, a heap push, a
cancelled entry for the loop to sweep); here the waiting checkpoints queue in the order they
started — the order they are due — under one timer, and those that ended leave the queue when
they reach its head.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Protocol


class Due(Protocol):
    """What waits: told when its time has come, unless it has ``ended`` first."""

    ended: bool

    def due(self) -> None: ...


class StartTimer:
    """The waiting checkpoints of one event loop, oldest first, under one timer."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float):
        self.loop = loop
        self.delay = delay
        self.waiting: deque[tuple[float, Due]] = deque()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, waiter: Due) -> None:
        """Call ``waiter.due()`` ``delay`` seconds from now unless it has ended by then."""
        waiting = self.waiting
        while waiting and waiting[0][1].ended:  # (a loop that never idles would keep them all)
            waiting.popleft()
        due = self.loop.time() + self.delay
        waiting.append((due, waiter))
        if self.timer is None:
            self.timer = self.loop.call_at(due, self._fire)

    def _fire(self) -> None:
        self.timer = None
        now = self.loop.time()
        waiting = self.waiting
        while waiting:
            due, waiter = waiting[0]
            if waiter.ended:
                waiting.popleft()
            elif due > now:
                self.timer = self.loop.call_at(due, self._fire)
                return
            else:
                waiting.popleft()
                waiter.due()
