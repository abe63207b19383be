"""A ``python`` step calling a sync function runs it in a worker thread (hub.core.threads): a
function that blocks stalls nothing else, sees the context the middleware set around the step,
and a timeout or a kill ends the step at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hub.engine.run import Middleware, StepCall
from hub.flow.loader import load_text
from hub.store.store import Store
from hub.testing import make_engine, run_flow
from tests import helpers


def test_a_blocking_sync_step_does_not_stall_a_parallel_async_step(store: Store) -> None:
    helpers.GATE.clear()
    result = run_flow(
        """
id: gate
tasks:
  - id: both
    type: parallel
    tasks:
      - {id: blocked, type: python, function: 'tests.helpers:wait_gate', args: [10]}
      - {id: opener, type: python, function: 'tests.helpers:open_gate', kwargs: {after: 0.05}}
""",
        store=store,
    )
    assert result.state == "SUCCESS", result.error
    assert result.output("blocked") is True  # opened by the async step while it blocked its thread
    assert result.output("opener") == "open"


class SetsCurrent(Middleware):
    """Sets a context variable around each step, as a tracing middleware sets the current span."""

    async def step(self, info: StepCall, call: Callable[[], Awaitable[Any]]) -> Any:
        token = helpers.CURRENT.set(f"inside {info.path}")
        try:
            return await call()
        finally:
            helpers.CURRENT.reset(token)


def test_the_context_set_around_a_step_reaches_its_sync_function(sqlite_store: Store) -> None:
    engine = make_engine(sqlite_store)
    engine.middleware.append(SetsCurrent())
    result = run_flow("id: ctx\ntasks:\n  - {id: look, type: python, function: 'tests.helpers:current'}\n",
                      engine=engine)
    assert result.output("look") == "inside look"


def test_a_sync_step_past_its_timeout_fails_at_once_and_the_next_runs(sqlite_store: Store) -> None:
    helpers.GATE.clear()
    started = time.monotonic()
    try:
        result = run_flow(
            """
id: late
tasks:
  - {id: stuck, type: python, function: 'tests.helpers:wait_gate', args: [10], timeout: 100ms, allow_failure: true}
  - {id: after, type: python, function: 'tests.helpers:echo', kwargs: {ran: true}}
""",
            store=sqlite_store,
        )
    finally:
        helpers.GATE.set()  # lets the abandoned function end
    assert time.monotonic() - started < 5
    assert result.step("stuck")["error"]["type"] == "TaskTimeout"
    assert result.output("after") == {"ran": True}


def test_kill_ends_an_execution_blocked_in_a_sync_step(sqlite_store: Store) -> None:
    helpers.GATE.clear()
    engine = make_engine(sqlite_store)
    flow = load_text("id: k\ntasks:\n  - {id: stuck, type: python, function: 'tests.helpers:wait_gate', args: [10]}\n"
                     "  - {id: after, type: log, message: never}\n")

    async def go() -> dict[str, Any]:
        execution_id = await engine.start(flow)
        for _ in range(200):
            await asyncio.sleep(0.01)
            if any(r["path"] == "stuck" for r in engine.store.step_runs(execution_id)):
                break
        return await engine.kill(execution_id)

    started = time.monotonic()
    try:
        killed = asyncio.run(go())
    finally:
        helpers.GATE.set()
    assert time.monotonic() - started < 5
    assert killed["state"] == "KILLED"
    assert [(r["path"], r["state"]) for r in engine.store.step_runs(killed["id"])] == [("stuck", "KILLED")]
