"""A flow that calls itself: refused by ``hub validate`` when unconditional, stopped at
HUB_SUBFLOW_MAX_DEPTH when conditional, every execution ended; ``kill`` reaches the children;
a start-up resume survives an execution that cannot be continued."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import FlowError
from hub.flow.loader import load_text
from hub.testing import make_engine, run_flow

RECURSIVE = """
id: again
namespace: team
inputs: [{id: n, type: int, default: 0}]
tasks:
  - id: deeper
    type: subflow
    if: "{{ inputs.n < 1000 }}"
    flow: again
    inputs: {n: "{{ inputs.n + 1 }}"}
outputs: {n: "{{ inputs.n }}"}
"""


def test_a_flow_calling_itself_unconditionally_is_refused_at_validation() -> None:
    for ref in ("again", "team.again"):
        text = RECURSIVE.replace('    if: "{{ inputs.n < 1000 }}"\n', "").replace("flow: again", f"flow: {ref}")
        with pytest.raises(FlowError) as info:
            load_text(text, "again.yaml")
        (location,) = [str(loc) for loc in info.value.locations]
        assert location.startswith("again.yaml:8:11: tasks[0].flow: the flow team.again starts itself here")
    load_text(RECURSIVE)  # with a condition it may recurse (bounded at run time)
    load_text(RECURSIVE.replace("flow: again", "flow: other.again"))  # another namespace's flow


def test_recursion_stops_at_the_depth_limit_and_leaves_nothing_running(store) -> None:
    engine = make_engine(store, subflow_max_depth=4)
    engine.deploy(load_text(RECURSIVE))
    result = run_flow(RECURSIVE, engine=engine)
    assert result.state == "FAILED"
    rows = engine.store.list_executions(limit=100)
    assert len(rows) == 5  # the root and four levels of children
    assert {row["state"] for row in rows} == {"FAILED"}
    deepest = max(rows, key=lambda row: row["inputs"]["n"])
    assert deepest["inputs"]["n"] == 4
    assert "nested 5 levels deep, past the limit of 4 (HUB_SUBFLOW_MAX_DEPTH)" in deepest["error"]["message"]
    assert "ended FAILED" in result.error["message"]


def test_the_default_limit_is_ten(store) -> None:
    engine = make_engine(store)
    engine.deploy(load_text(RECURSIVE))
    assert run_flow(RECURSIVE, engine=engine).state == "FAILED"
    assert len(engine.store.list_executions(limit=100)) == 11


CHILD = """
id: slow_child
namespace: team
tasks:
  - {id: nap, type: wait, duration: 1h}
"""
PARENT = """
id: parent
namespace: team
tasks:
  - id: both
    type: parallel
    tasks:
      - {id: call, type: subflow, flow: slow_child}
      - {id: spread, type: for_each, items: [1, 2], distributed: true, tasks: [{id: nap, type: wait, duration: 1h}]}
"""


def test_kill_reaches_subflows_and_distributed_iterations(store) -> None:
    async def main() -> None:
        engine = make_engine(store)
        engine.deploy(load_text(CHILD))
        row = await engine.execute(load_text(PARENT))
        await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]
        assert row["state"] == "PAUSED"
        children = engine.store.list_executions(parent_id=row["id"], limit=10)
        assert len(children) == 3 and {c["state"] for c in children} == {"PAUSED"}
        killed = await engine.kill(row["id"])
        assert killed["state"] == "KILLED"
        assert {c["state"] for c in engine.store.list_executions(parent_id=row["id"], limit=10)} == {"KILLED"}
        await engine.queue.close()  # type: ignore[attr-defined]

    asyncio.run(main())


def test_a_resume_that_fails_for_one_execution_resumes_the_others(store, monkeypatch) -> None:
    async def main() -> None:
        engine = make_engine(store)
        flow = load_text("id: plain\nnamespace: team\ntasks:\n  - {id: say, type: log, message: hi}\n")
        first = await engine.start(flow, enqueue=False)
        second = await engine.start(flow, enqueue=False)
        for execution_id in (first, second):  # owned by a process that died
            engine.store.update_execution(execution_id, state="RUNNING", owner="gone-host:1:dead", heartbeat_at=0.0)
        real_run = engine.run

        async def run(execution_id: str):  # type: ignore[no-untyped-def]
            if execution_id == first:
                raise RecursionError("maximum recursion depth exceeded")
            return await real_run(execution_id)

        monkeypatch.setattr(engine, "run", run)
        resumed = await engine.resume_interrupted(run_now=True)
        assert set(resumed) >= {first, second}
        assert engine.store.get_execution(second)["state"] == "SUCCESS"

    asyncio.run(main())
