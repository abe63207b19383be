"""A side-effecting step's RUNNING row is written once it has run ``leaf.START_DELAY``; the
checkpoints of a loop wait for that under one timer (hub.engine.timers)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from hub.engine.timers import StartTimer
from hub.flow.loader import load_text
from hub.store.store import Store
from hub.testing import make_engine
from tests import helpers


class Waiter:
    def __init__(self, name: str, fired: list[str]):
        self.name, self.fired, self.ended = name, fired, False

    def due(self) -> None:
        self.fired.append(self.name)


def test_waiters_are_told_in_order_when_due_and_ended_ones_never() -> None:
    fired: list[str] = []

    async def main() -> tuple[list[str], list[str], object]:
        timer = StartTimer(asyncio.get_running_loop(), 0.05)
        first, gone, late = Waiter("first", fired), Waiter("gone", fired), Waiter("late", fired)
        timer.add(first)
        timer.add(gone)
        await asyncio.sleep(0.03)
        timer.add(late)
        gone.ended = True
        await asyncio.sleep(0.035)  # first is due, late is not yet
        early = list(fired)
        await asyncio.sleep(0.1)
        return early, list(fired), timer.timer

    early, fired_all, timer_left = asyncio.run(main())
    assert early == ["first"]
    assert fired_all == ["first", "late"]
    assert timer_left is None  # nothing waits: no timer is left armed


FLOW = """
id: three
tasks:
  - id: all
    type: parallel
    tasks:
      - {id: a, type: python, function: 'tests.helpers:wait_gate', args: [10]}
      - {id: b, type: python, function: 'tests.helpers:wait_gate', args: [10]}
      - {id: c, type: python, function: 'tests.helpers:wait_gate', args: [10]}
"""


def test_steps_running_past_the_delay_show_their_running_rows_on_every_loop(sqlite_store: Store) -> None:
    engine = make_engine(sqlite_store)
    flow = load_text(FLOW)

    async def once() -> tuple[set[str], dict[str, Any]]:
        helpers.GATE.clear()
        execution_id = await engine.start(flow)
        running: set[str] = set()
        deadline = time.monotonic() + 5
        while len(running) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            running = {r["task_id"] for r in engine.store.step_runs(execution_id) if r["state"] == "RUNNING" and r["task_type"] == "python"}
        helpers.GATE.set()
        await engine.queue.drain()  # type: ignore[attr-defined]
        return running, engine.store.get_execution(execution_id)

    try:
        for _ in range(2):  # the second run is on a new loop: the engine's timer follows it
            running, ended = asyncio.run(once())
            assert running == {"a", "b", "c"}
            assert ended["state"] == "SUCCESS"
    finally:
        helpers.GATE.set()
