"""Pause as an engine primitive: a paused step holds a resume token and
``engine.complete(token, output)`` ends it exactly once, whatever races."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from hub.core.registry import Registry
from hub.engine.queue import LocalQueue
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
    changed = secret[:-1] + ("y" if secret.endswith("x") else "x")  # (never the secret itself)
    for bad in (f"{step_id}.{changed}", f"{int(step_id) + 1}.{secret}", "nonsense", f"{step_id}."):
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


WAIT_FLOW = """
id: napping
namespace: pauses
tasks:
  - {id: nap, type: wait, duration: 2h}
  - {id: after, type: set, values: {woke: "{{ outputs.nap.waited }}"}}
outputs: {woke: "{{ outputs.after.woke }}"}
"""

CHILD_FLOW = """
id: child
namespace: pauses
tasks:
  - {id: ask, type: test.wait_outside, key: "{{ execution.id }}"}
outputs: {answer: "{{ outputs.ask.answer }}"}
"""

PARENT_FLOW = """
id: parent
namespace: pauses
tasks:
  - {id: call, type: subflow, flow: pauses.child, DISTRIBUTED}
  - {id: after, type: set, values: {got: "{{ outputs.call.outputs.answer }}"}}
outputs: {got: "{{ outputs.after.got }}"}
"""


def _token(engine: Any, execution_id: str, path: str) -> str:
    [row] = [s for s in engine.store.step_runs(execution_id) if s["path"] == path]
    assert row["state"] == "PAUSED"
    return str(row["data"]["resume_token"])


@pytest.mark.anyio
async def test_a_long_wait_holds_a_token_and_twenty_completions_end_it_once(store) -> None:  # type: ignore[no-untyped-def]
    from hub.engine.clock import FakeClock

    engine = _engine(store)
    engine.clock = FakeClock()
    execution = await engine.execute(engine.catalog.loader.load_text(WAIT_FLOW))
    assert execution["state"] == "PAUSED"
    token = _token(engine, execution["id"], "nap")
    answers = [{"waited_until": 0, "waited": f"caller {n}"} for n in range(20)]
    results = await asyncio.gather(*(engine.complete(token, answer) for answer in answers))
    assert results.count(True) == 1
    await engine.queue.drain(include_timers=False)
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"woke": f"caller {results.index(True)}"}  # the wait was not run again
    assert [s["state"] for s in done.steps if s["path"] == "nap"] == ["SUCCESS"]
    assert await engine.complete(token, answers[0]) is False
    await engine.queue.close()


@pytest.mark.anyio
async def test_a_due_wait_is_ended_through_its_token_whichever_timer_fires(store) -> None:  # type: ignore[no-untyped-def]
    from hub.engine.clock import FakeClock

    engine = _engine(store)
    engine.clock = clock = FakeClock()
    execution = await engine.execute(engine.catalog.loader.load_text(WAIT_FLOW))
    token = _token(engine, execution["id"], "nap")
    await engine.queue.close()  # its own timer would fire in two real hours
    clock.now += 7200
    # five timers at once, each in a process of its own (one took the delayed job, others swept
    # the due executions)
    timers = []
    for n in range(5):
        timer = _engine(store)
        timer.clock, timer.owner = clock, f"timer-{n}"
        timers.append(timer)
    ends = await asyncio.gather(*(timer.run(execution["id"]) for timer in timers))
    assert {end["state"] for end in ends} <= {"SUCCESS", "RUNNING", "PAUSED"}
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"woke": "2h00m"}
    nap = done.step("nap")
    assert nap["data"]["completed"] == "observed"  # ended through its token, replayed, not re-run
    assert [s["path"] for s in done.steps].count("after") == 1
    assert await engine.complete(token, {"late": True}) is False


async def _parent_paused_on_child(store: Any, distributed: bool) -> tuple[Any, dict[str, Any], str]:
    engine = _engine(store)
    engine.deploy(engine.catalog.loader.load_text(CHILD_FLOW))
    text = PARENT_FLOW.replace("DISTRIBUTED", f"distributed: {str(distributed).lower()}")
    execution = await engine.execute(engine.catalog.loader.load_text(text))
    await engine.queue.drain()
    execution = engine.store.get_execution(execution["id"])
    assert execution["state"] == "PAUSED"
    [child] = engine.store.list_executions(parent_id=execution["id"])
    assert child["state"] == "PAUSED"
    return engine, execution, child["id"]


@pytest.mark.anyio
@pytest.mark.parametrize("distributed", [False, True])
async def test_a_subflow_step_is_ended_by_its_childs_end_through_its_token(store, distributed: bool) -> None:  # type: ignore[no-untyped-def]
    engine, execution, child_id = await _parent_paused_on_child(store, distributed)
    assert await engine.complete(TOKENS[child_id], {"answer": "from the child"})
    await engine.queue.drain()
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"got": "from the child"}
    call = done.step("call")
    assert call["data"]["completed"] == "observed"  # ended by the child's end, not re-run to read it
    assert [s["path"] for s in done.steps].count("call") == 1


@pytest.mark.anyio
async def test_twenty_completions_and_the_childs_end_race_for_a_subflow_step_and_one_wins(store) -> None:  # type: ignore[no-untyped-def]
    engine, execution, child_id = await _parent_paused_on_child(store, distributed=True)
    token = _token(engine, execution["id"], "call")
    outside = [{"execution_id": child_id, "state": "SUCCESS", "outputs": {"answer": f"caller {n}"}} for n in range(20)]
    results = await asyncio.gather(
        engine.complete(TOKENS[child_id], {"answer": "from the child"}),
        *(engine.complete(token, answer) for answer in outside),
    )
    assert results[0] is True  # the child's own step
    await engine.queue.drain()
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    wins = results[1:].count(True)
    assert wins <= 1  # one of the outside callers, or else the child's end, ended the step
    expected = f"caller {results[1:].index(True)}" if wins else "from the child"
    assert done.outputs == {"got": expected}
    assert [s["state"] for s in done.steps if s["path"] == "call"] == ["SUCCESS"]
    assert engine.store.get_execution(child_id)["state"] == "SUCCESS"
    assert await engine.complete(token, outside[0]) is False


class AnswerParams(BaseModel):
    key: str


class AnswerOutside:
    """Waits until the step holding ``key``'s token has paused, then answers it: the answer
    lands after the step paused but while its execution is still RUNNING."""

    type = "test.answer_outside"
    Params = AnswerParams

    async def run(self, ctx: Any, params: AnswerParams) -> Any:
        engine = EARLY["engine"]
        for _ in range(500):
            if step_paused(engine, ctx.execution_id, TOKENS.get(params.key)):
                break
            await asyncio.sleep(0.01)
        ANSWERED[params.key] = (step_paused(engine, ctx.execution_id, TOKENS.get(params.key)),
                                engine.store.get_execution(ctx.execution_id)["state"])
        assert await engine.complete(TOKENS[params.key], {"answer": "meanwhile"})
        return {"answered": True}


ANSWERED: dict[str, tuple[bool, str]] = {}
"""Per key: whether the step was PAUSED when AnswerOutside answered it, and its execution's state then."""


def step_paused(engine: Any, execution_id: str, token: str | None) -> bool:
    rows = engine.store.step_runs(execution_id)
    return any((r.get("data") or {}).get("resume_token") == token and r["state"] == "PAUSED" for r in rows)


ITERATION_FLOW = """
id: spread
namespace: pauses
tasks:
  - id: each
    type: for_each
    items: [1]
    distributed: true
    tasks:
      - id: both
        type: parallel
        tasks:
          - {id: ask, type: test.wait_outside, key: meanwhile}
          - {id: answer, type: test.answer_outside, key: meanwhile}
      - {id: after, type: set, values: {got: "{{ outputs.ask.answer }}"}}
"""


@pytest.mark.anyio
async def test_an_iteration_step_answered_while_its_execution_pauses_is_not_lost(store) -> None:  # type: ignore[no-untyped-def]
    """The step of a distributed for_each iteration is answered after it paused but before the
    iteration's execution is PAUSED (complete() sees it RUNNING and wakes nothing): the
    iteration's walk notices the answer and goes on, as a flow's walk does."""
    engine = _engine(store)
    engine.registry.add(AnswerOutside)
    EARLY["engine"] = engine
    TOKENS.pop("meanwhile", None)
    execution = await engine.execute(engine.catalog.loader.load_text(ITERATION_FLOW))
    await engine.queue.drain()
    [child] = engine.store.list_executions(parent_id=execution["id"])
    assert engine.store.get_execution(child["id"])["state"] == "SUCCESS"
    done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert done.step("each")["state"] == "SUCCESS"


WALK_FLOW = """
id: answered_meanwhile
namespace: pauses
tasks:
  - id: both
    type: parallel
    tasks:
      - {id: ask, type: test.wait_outside, key: walk-meanwhile}
      - {id: answer, type: test.answer_outside, key: walk-meanwhile}
  - {id: after, type: set, values: {got: "{{ outputs.ask.answer }}"}}
outputs: {got: "{{ outputs.after.got }}"}
"""


@pytest.mark.anyio
async def test_a_step_answered_while_the_flow_walk_pauses_wakes_the_execution_in_process(store) -> None:  # type: ignore[no-untyped-def]
    """walk_flow's gap on the in-process queue: the step is answered after it paused but before
    its execution is written PAUSED, so complete() finds the execution RUNNING and wakes
    nothing; the walk (WalkerBase.pause_execution) sees the answer and wakes it itself, and
    LocalQueue runs it again once the pausing run has returned. Without that check the
    execution would stay PAUSED for good."""
    engine = _engine(store)
    engine.registry.add(AnswerOutside)
    EARLY["engine"] = engine
    TOKENS.pop("walk-meanwhile", None)
    assert isinstance(engine.queue, LocalQueue)
    execution_id = await engine.start(engine.catalog.loader.load_text(WALK_FLOW))
    await engine.queue.drain()
    assert ANSWERED["walk-meanwhile"] == (True, "RUNNING")  # answered in the gap, not before the pause
    done = result_of(engine, execution_id)
    assert done.state == "SUCCESS", done.error
    assert done.outputs == {"got": "meanwhile"}
    assert [s["state"] for s in done.runs("ask")] == ["SUCCESS"]  # ended by its answer, never run again
    assert await engine.complete(TOKENS["walk-meanwhile"], {"answer": "late"}) is False
