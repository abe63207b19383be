"""Flow-level concurrency limits, enforced in the database."""

from __future__ import annotations

import asyncio

import pytest

from hub.flow.loader import load_text
from hub.testing import make_engine

FLOW = """
id: limited
concurrency: {{limit: 1, behavior: {behavior}}}
tasks:
  - {{id: nap, type: python, function: "tests.helpers:slow", kwargs: {{seconds: 0.5}}}}
"""


@pytest.mark.parametrize("behavior,second_state", [("queue", "SUCCESS"), ("cancel", "CANCELLED"), ("fail", "FAILED")])
def test_concurrency_limit_behaviors(store, behavior: str, second_state: str) -> None:
    engine = make_engine(store)
    flow = load_text(FLOW.format(behavior=behavior))

    async def state_of(execution: str, *states: str) -> str:
        # (a loaded machine can take longer than any fixed sleep to get the first one running)
        for _ in range(400):
            state = engine.store.get_execution(execution)["state"]
            if state in states:
                return state
            await asyncio.sleep(0.01)
        return state

    async def go() -> list[dict]:
        first = await engine.start(flow)
        await state_of(first, "RUNNING")
        second = await engine.start(flow)
        during = await state_of(second, "QUEUED", "CANCELLED", "FAILED")
        await engine.queue.drain()
        rows = [engine.store.get_execution(first), engine.store.get_execution(second)]
        rows.append({"during": during})
        return rows

    first, second, during = asyncio.run(go())
    assert first["state"] == "SUCCESS"
    assert second["state"] == second_state
    if behavior == "queue":
        assert during["during"] == "QUEUED"
        assert second["started_at"] >= first["ended_at"]
    else:
        assert "concurrency limit" in second["error"]["message"]
