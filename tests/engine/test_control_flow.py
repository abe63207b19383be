"""Each control-flow kind, run for real on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from hub.engine.clock import FakeClock
from hub.testing import make_engine, run_flow, run_flow_async
from tests import helpers


@pytest.fixture(autouse=True)
def _reset() -> None:
    helpers.reset()


def test_sequential_runs_in_order_and_outputs_flow_downstream(store) -> None:
    result = run_flow(
        """
id: seq
tasks:
  - id: group
    type: sequential
    tasks:
      - {id: a, type: set, values: {n: 1}}
      - {id: b, type: set, values: {n: "{{ outputs.a.n + 1 }}"}}
  - {id: c, type: set, values: {n: "{{ outputs.b.n * 10 }}"}}
outputs: {n: "{{ outputs.c.n }}"}
""",
        store=store,
    )
    assert result.state == "SUCCESS"
    assert result.outputs == {"n": 20}
    assert [s["path"] for s in result.steps if s["state"] == "SUCCESS"] == ["group", "a", "b", "c"]


def test_parallel_respects_its_concurrency_cap(store) -> None:
    tasks = "\n".join(
        f"      - {{id: t{i}, type: python, function: 'tests.helpers:track', kwargs: {{name: t{i}}}}}" for i in range(6)
    )
    result = run_flow(f"id: par\ntasks:\n  - id: fan\n    type: parallel\n    concurrency: 2\n    tasks:\n{tasks}\n", store=store)
    assert result.state == "SUCCESS"
    assert helpers.STATE["max_active"] == 2
    assert {result.output(f"t{i}") for i in range(6)} == {f"t{i}" for i in range(6)}


def test_parallel_failure_fails_the_block_after_siblings_end(store) -> None:
    result = run_flow(
        """
id: par_fail
tasks:
  - id: fan
    type: parallel
    tasks:
      - {id: bad, type: fail, message: nope}
      - {id: good, type: python, function: "tests.helpers:slow", kwargs: {seconds: 0.05}}
""",
        store=store,
    )
    assert result.state == "FAILED"
    assert result.error["task_id"] == "bad" and result.error["message"] == "nope"
    assert result.step("good")["state"] == "SUCCESS"
    assert result.step("fan")["state"] == "FAILED"


@pytest.mark.parametrize("amount,branch", [(5, "then"), (1, "else")])
def test_if_then_else(store, amount: int, branch: str) -> None:
    result = run_flow(
        """
id: branchy
inputs: [{id: amount, type: int}]
tasks:
  - id: check
    type: if
    condition: "{{ inputs.amount > 3 }}"
    then: [{id: big, type: set, values: {size: big}}]
    else: [{id: small, type: set, values: {size: small}}]
outputs: {branch: "{{ outputs.check.branch }}"}
""",
        {"amount": amount},
        store=store,
    )
    assert result.outputs == {"branch": branch}
    ran = {s["path"] for s in result.steps}
    assert ("big" in ran) == (branch == "then") and ("small" in ran) == (branch == "else")


@pytest.mark.parametrize("value,expected", [("refund", "r"), ("other", "d")])
def test_switch_picks_the_case_or_default(store, value: str, expected: str) -> None:
    result = run_flow(
        """
id: sw
inputs: [{id: kind, type: string}]
tasks:
  - id: route
    type: switch
    value: "{{ inputs.kind }}"
    cases:
      refund: [{id: r, type: set, values: {v: r}}]
      question: [{id: q, type: set, values: {v: q}}]
    default: [{id: d, type: set, values: {v: d}}]
""",
        {"kind": value},
        store=store,
    )
    assert result.state == "SUCCESS"
    assert result.output(expected) == {"v": expected}
    assert result.output("route")["case"] == ("refund" if value == "refund" else "default")


def test_for_each_collects_outputs_in_item_order_with_concurrency(store) -> None:
    result = run_flow(
        """
id: loop
tasks:
  - id: each
    type: for_each
    items: [30, 10, 20, 0]
    concurrency: 3
    tasks:
      - id: nap
        type: python
        function: tests.helpers:slow
        kwargs: {seconds: "{{ item / 1000 }}"}
      - {id: label, type: set, values: {i: "{{ index }}", v: "{{ item }}", after: "{{ outputs.nap }}"}}
outputs:
  values: "{{ outputs.label | pluck('v') }}"
""",
        store=store,
    )
    assert result.state == "SUCCESS"
    assert result.outputs == {"values": [30, 10, 20, 0]}
    each = result.output("each")
    assert [it["label"]["i"] for it in each] == [0, 1, 2, 3]
    assert result.step("label[2]")["state"] == "SUCCESS"


def test_for_each_rejects_a_non_list(store) -> None:
    result = run_flow(
        "id: l\ntasks:\n  - {id: each, type: for_each, items: '{{ 5 }}', tasks: [{id: x, type: log, message: hi}]}\n",
        store=store,
    )
    assert result.state == "FAILED"
    assert "items must be a list" in result.error["message"]


SUB = """
id: child
namespace: team
inputs: [{id: n, type: int, required: true}]
tasks:
  - {id: double, type: set, values: {v: "{{ inputs.n * 2 }}"}}
outputs: {v: "{{ outputs.double.v }}"}
"""


def test_subflow_waits_and_returns_outputs(store) -> None:
    from hub.flow.loader import load_text

    engine = make_engine(store)
    engine.deploy(load_text(SUB))
    result = run_flow(
        """
id: parent
namespace: team
tasks:
  - {id: call, type: subflow, flow: child, inputs: {n: 21}}
outputs: {v: "{{ outputs.call.outputs.v }}"}
""",
        engine=engine,
    )
    assert result.state == "SUCCESS", result.error
    assert result.outputs == {"v": 42}
    child = engine.store.get_execution(result.output("call")["execution_id"])
    assert child["parent_id"] == result.id and child["state"] == "SUCCESS"


def test_subflow_fire_and_forget_and_missing_flow(store) -> None:
    from hub.flow.loader import load_text

    engine = make_engine(store)
    engine.deploy(load_text(SUB))
    result = run_flow(
        "id: p\nnamespace: team\ntasks:\n  - {id: go, type: subflow, flow: team.child, inputs: {n: 1}, wait: false}\n",
        engine=engine,
    )
    assert result.state == "SUCCESS"
    child = engine.store.get_execution(result.output("go")["execution_id"])
    assert child["state"] == "SUCCESS" and child["outputs"] == {"v": 2}
    missing = run_flow("id: p2\ntasks:\n  - {id: go, type: subflow, flow: nowhere.none}\n", engine=engine)
    assert missing.state == "FAILED" and "subflow nowhere.none not found" in missing.error["message"]


def test_subflow_bad_inputs_fail_the_step_with_the_reason(store) -> None:
    from hub.flow.loader import load_text

    engine = make_engine(store)
    engine.deploy(load_text(SUB))
    result = run_flow("id: p\nnamespace: team\ntasks:\n  - {id: go, type: subflow, flow: child, inputs: {n: many}}\n", engine=engine)
    assert result.state == "FAILED"
    assert "n:" in result.error["message"] and "integer" in result.error["message"]


def test_a_flow_disabled_through_the_api_starts_no_subflow_and_no_reference_start(store) -> None:
    """The API's disable switch is stored in the database, so it holds for every way of starting
    the flow by name: a subflow step, a trigger, another process."""
    from hub.errors import HubError
    from hub.flow.loader import load_text
    from hub.store.api_store import ApiStore

    engine = make_engine(store)
    engine.deploy(load_text(SUB))
    ApiStore(store).set_disabled("team", "child", True)
    result = run_flow("id: p\nnamespace: team\ntasks:\n  - {id: go, type: subflow, flow: child, inputs: {n: 1}}\n", engine=engine)
    assert result.state == "FAILED"
    assert "team.child is disabled" in result.error["message"]
    with pytest.raises(HubError, match="disabled"):
        asyncio.run(engine.start("team.child", {"n": 1}))
    ApiStore(store).set_disabled("team", "child", False)
    again = run_flow("id: p\nnamespace: team\ntasks:\n  - {id: go, type: subflow, flow: child, inputs: {n: 1}}\n", engine=engine)
    assert again.state == "SUCCESS" and again.output("go")["outputs"] == {"v": 2}


def test_wait_sleeps_on_the_clock_and_long_waits_pause() -> None:
    clock = FakeClock()
    engine = make_engine(clock=clock)
    result = asyncio.run(run_flow_async("id: w\ntasks:\n  - {id: nap, type: wait, duration: 20s}\n", engine=engine))
    assert result.state == "SUCCESS"
    assert clock.sleeps == [20.0]

    async def long_wait() -> tuple[str, str]:
        from hub.flow.loader import load_text

        execution = await engine.execute(load_text("id: w2\ntasks:\n  - {id: nap, type: wait, duration: 2h}\n  - {id: after, type: log, message: awake}\n"))
        paused = execution["state"]
        clock.now += 7200
        await engine.queue.close()
        resumed = await engine.resume_interrupted(run_now=True)
        assert execution["id"] in resumed
        return paused, engine.store.get_execution(execution["id"])["state"]

    assert asyncio.run(long_wait()) == ("PAUSED", "SUCCESS")


def test_skipped_step_with_if(store) -> None:
    result = run_flow(
        "id: s\ntasks:\n  - {id: a, type: log, message: hi, if: '{{ false }}'}\n  - {id: b, type: log, message: there, if: 'true'}\n",
        store=store,
    )
    assert result.step("a")["state"] == "SKIPPED"
    assert result.step("b")["state"] == "SUCCESS"


class _Gate:
    """A test kind that pauses until its item is in ``OPEN`` (like an approval per item)."""

    type = "test.gate"
    OPEN: set[int] = set()

    from hub.tasks.core import SetParams as Params  # values: {n: ...}

    async def run(self, ctx, params):  # type: ignore[no-untyped-def]
        from hub.errors import Paused

        n = params.values["n"]
        if n not in self.OPEN:
            raise Paused(f"waiting for {n}", resume_at=None)
        return {"n": n}


def test_pauses_in_concurrent_iterations_do_not_stop_the_others(sqlite_store) -> None:  # type: ignore[no-untyped-def]
    from hub.tasks.registry import builtin_registry

    registry = builtin_registry()
    registry.add(_Gate)
    engine = make_engine(sqlite_store)
    engine.registry = registry
    engine.catalog.loader.registry = registry
    from hub.flow.loader import FlowLoader

    flow = FlowLoader(registry).load_text(
        "id: g\ntasks:\n  - id: each\n    type: for_each\n    items: [1, 2, 3]\n    concurrency: 3\n"
        "    tasks:\n      - {id: gate, type: test.gate, values: {n: '{{ item }}'}}\n"
    )

    async def go() -> tuple[str, list[str], str]:
        _Gate.OPEN.clear()
        first = await engine.execute(flow)
        paused = sorted(r["path"] for r in engine.store.step_runs(first["id"]) if r["state"] == "PAUSED")
        _Gate.OPEN.update({1, 2, 3})
        await engine.resume(first["id"])
        await engine.queue.drain()
        return first["state"], paused, engine.store.get_execution(first["id"])["state"]

    state, paused, final = asyncio.run(go())
    assert state == "PAUSED"
    assert paused == ["gate[0]", "gate[1]", "gate[2]"]
    assert final == "SUCCESS"
