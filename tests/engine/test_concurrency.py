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
  - {{id: nap, type: python, function: "tests.helpers:slow", kwargs: {{seconds: 0.2}}}}
"""


@pytest.mark.parametrize("behavior,second_state", [("queue", "SUCCESS"), ("cancel", "CANCELLED"), ("fail", "FAILED")])
def test_concurrency_limit_behaviors(store, behavior: str, second_state: str) -> None:
    engine = make_engine(store)
    flow = load_text(FLOW.format(behavior=behavior))

    async def go() -> list[dict]:
        first = await engine.start(flow)
        await asyncio.sleep(0.05)
        second = await engine.start(flow)
        await asyncio.sleep(0.05)
        during = engine.store.get_execution(second)["state"]
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
