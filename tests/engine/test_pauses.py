"""Pause as an engine primitive: a paused step holds a resume token and
``engine.complete(token, output)`` ends it exactly once, whatever races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from hub.core.registry import Registry
from hub.errors import Paused
from hub.flow.loader import FlowLoader
from hub.tasks.registry import builtin_registry
from hub.testing import make_engine, result_of

TOKENS: dict[str, str] = {}
EARLY: dict[str, Any] = {}


class OutsideParams(BaseModel):
    key: str
    answer_first: bool = False


class WaitOutside:
    """Hands its resume token out and pauses; with ``answer_first`` the answer arrives before
    the task has finished pausing (the decide-before-pause race)."""

    type = "test.wait_outside"
    Params = OutsideParams

    async def run(self, ctx: Any, params: OutsideParams) -> Any:
        token = ctx.resume_token
        TOKENS[params.key] = token
        if params.answer_first:
            assert await EARLY["engine"].complete(token, {"answer": "early"})
        raise Paused("waiting for the outside world")


FLOW = """
id: outside
namespace: pauses
inputs: [{id: key, type: string}, {id: first, type: bool, default: false}]
tasks:
  - {id: ask, type: test.wait_outside, key: "{{ inputs.key }}", answer_first: "{{ inputs.first }}"}
  - {id: after, type: set, values: {got: "{{ outputs.ask.answer }}"}}
outputs: {got: "{{ outputs.after.got }}"}
"""


def _engine(store: Any) -> Any:
    registry: Registry = builtin_registry()
    registry.add(WaitOutside)
    engine = make_engine(store)
    engine.registry = registry
    engine.catalog.loader.registry = registry
    engine.catalog.loader = FlowLoader(registry)
    return engine


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_twenty_concurrent_completions_end_the_step_once(store) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(store)
    flow = engine.catalog.loader.load_text(FLOW)
    execution = await engine.execute(flow, {"key": "race"})
    assert execution["state"] == "PAUSED"
    token = TOKENS["race"]
    results = await asyncio.gather(*(engine.complete(token, {"answer": f"caller {n}"}) for n in range(20)))
    assert results.count(True) == 1
    await engine.queue.drain()
    done = result_of(engine, execution["id"])
    winner = results.index(True)
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"got": f"caller {winner}"}
    runs = [s for s in done.steps if s["path"] == "ask"]
    assert [(s["attempt"], s["state"]) for s in runs] == [(1, "SUCCESS")]  # ended, never run again
    assert await engine.complete(token, {"answer": "late"}) is False


@pytest.mark.anyio
async def test_an_answer_before_the_pause_ends_the_step_without_pausing(store) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(store)
    EARLY["engine"] = engine
    flow = engine.catalog.loader.load_text(FLOW)
    execution = await engine.execute(flow, {"key": "early", "first": True})
    await engine.queue.drain()
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"got": "early"}
    assert [s["state"] for s in done.steps if s["path"] == "ask"] == ["SUCCESS"]


@pytest.mark.anyio
async def test_a_completion_with_an_error_fails_the_step(store) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(store)
    flow = engine.catalog.loader.load_text(FLOW)
    execution = await engine.execute(flow, {"key": "refused"})
    assert await engine.complete(TOKENS["refused"], error={"type": "Rejected", "message": "no, thanks"})
    await engine.queue.drain()
    done = result_of(engine, execution["id"])
    assert done.state == "FAILED"
    assert done.step("ask")["error"]["message"] == "no, thanks"


@pytest.mark.anyio
async def test_a_wrong_or_forged_token_completes_nothing(store) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(store)
    flow = engine.catalog.loader.load_text(FLOW)
    execution = await engine.execute(flow, {"key": "forged"})
    step_id, _, secret = TOKENS["forged"].partition(".")
    for bad in (f"{step_id}.{secret[:-1]}x", f"{int(step_id) + 1}.{secret}", "nonsense", f"{step_id}."):
        assert await engine.complete(bad, {"answer": "forged"}) is False
    assert engine.store.get_execution(execution["id"])["state"] == "PAUSED"


@pytest.mark.anyio
async def test_a_killed_execution_cannot_be_completed(store) -> None:  # type: ignore[no-untyped-def]
    engine = _engine(store)
    flow = engine.catalog.loader.load_text(FLOW)
    execution = await engine.execute(flow, {"key": "killed"})
    await engine.kill(execution["id"])
    assert await engine.complete(TOKENS["killed"], {"answer": "too late"}) in (True, False)
    await engine.queue.drain()
    assert engine.store.get_execution(execution["id"])["state"] == "KILLED"
