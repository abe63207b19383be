"""``distributed: true``: for_each iterations and subflows as child executions on any worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.testing import run_flow
from tests.workers.conftest import Workers, wait_for
from tests.workers.steps import lines
from tests.workers.test_workers import all_ended, engine_for, start

LOOP = """
id: fan
variables: {greeting: hi}
tasks:
  - {id: base, type: set, values: {n: 10}}
  - id: loop
    type: for_each
    items: [1, 2, 3]
    distributed: true
    tasks:
      - {id: sq, type: set, values: {v: "{{ item * outputs.base.n }}", g: "{{ vars.greeting }}-{{ index }}"}}
outputs: {values: "{{ outputs.sq | map(attribute='v') | list }}", first: "{{ outputs.loop[0] }}"}
"""


def test_distributed_loop_in_process_gives_the_same_outputs() -> None:
    result = run_flow(LOOP)
    assert result.state == "SUCCESS", result.error
    assert result.outputs == {"values": [10, 20, 30], "first": {"sq": {"v": 10, "g": "hi-0"}}}
    children = result.engine.store.list_executions(parent_id=result.id)
    assert sorted(c["trigger"]["index"] for c in children) == [0, 1, 2]
    assert all(c["state"] == "SUCCESS" and c["parent_path"] == "loop" for c in children)
    # each child holds its iteration's step runs, at the same paths as an in-process loop
    paths = {c["trigger"]["index"]: [s["path"] for s in result.engine.store.step_runs(c["id"])] for c in children}
    assert paths == {0: ["sq[0]"], 1: ["sq[1]"], 2: ["sq[2]"]}


def test_iterations_render_the_variables_once_over_the_parents_trigger_and_execution() -> None:
    import asyncio

    from hub.flow.loader import load_text
    from hub.testing import make_engine, result_of

    flow = load_text("""
id: fan_vars
variables: {who: "{{ trigger.body.who }}", run: "{{ execution.id }}"}
tasks:
  - id: loop
    type: for_each
    items: [1, 2]
    distributed: true
    tasks:
      - {id: v, type: set, values: {who: "{{ vars.who }}", run: "{{ vars.run }}"}}
outputs: {who: "{{ outputs.v | map(attribute='who') | list }}", run: "{{ outputs.v | map(attribute='run') | list }}"}
""")
    engine = make_engine()

    async def go() -> str:
        # the child's own trigger has no body: only the parent's scope may render the variables
        execution = await engine.execute(flow, trigger={"type": "webhook", "body": {"who": "ada"}})
        await engine.queue.drain()  # type: ignore[attr-defined]
        return str(execution["id"])

    parent = asyncio.run(go())
    result = result_of(engine, parent)
    assert result.state == "SUCCESS", result.error
    assert result.outputs == {"who": ["ada", "ada"], "run": [parent, parent]}


class _Held:
    """A queue that only records what was submitted: the test runs each execution where it wants."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    async def submit(self, execution_id: str, delay: float = 0.0) -> None:
        self.submitted.append(execution_id)


def test_an_iteration_whose_variables_fail_ends_failed_and_fails_the_loop(store) -> None:  # type: ignore[no-untyped-def]
    """An iteration renders the variables again, on whichever worker runs it: on a worker that
    lacks a secret the parent had, the iteration ends FAILED with the reason (it was left RUNNING,
    and its parent PAUSED for good), the loop fails, and a restart where the secret is set ends
    the run."""
    import asyncio

    from hub.engine.runner import Engine
    from hub.flow.loader import load_text
    from hub.flow.secrets import Secrets
    from hub.testing import make_engine, result_of

    flow = load_text("""
id: fan_secret
variables: {auth: "Bearer {{ secret('FAN_TOKEN') }}"}
tasks:
  - id: loop
    type: for_each
    items: [1, 2]
    distributed: true
    tasks:
      - {id: call, type: set, values: {auth: "{{ vars.auth }}", n: "{{ item }}"}}
""")
    queue = _Held()
    here = make_engine(store)
    here.secrets = Secrets(None, environ={"HUB_SECRET_FAN_TOKEN": "tok-123456789"})
    worker = Engine(store, here.settings)  # another process, without the secret
    worker.secrets = Secrets(None, environ={})
    here.queue = worker.queue = queue

    async def go() -> tuple[str, list[dict], dict]:  # type: ignore[type-arg]
        parent = await here.execute(flow)
        assert parent["state"] == "PAUSED"
        children = [await worker.run(child_id) for child_id in queue.submitted if child_id != parent["id"]]
        return parent["id"], children, await here.run(parent["id"])

    parent_id, children, parent = asyncio.run(go())
    assert len(children) == 2 and {c["state"] for c in children} == {"FAILED"}
    assert all(c["ended_at"] is not None and c["owner"] is None for c in children)
    message = children[0]["error"]["message"]
    assert message.startswith("variables.auth: secret 'FAN_TOKEN' is not set") and "secret('FAN_TOKEN')" in message
    assert not any(store.step_runs(c["id"]) for c in children)  # no task ran without its variables
    assert parent["state"] == "FAILED"
    assert parent["error"]["type"] == "ExpressionError" and parent["error"]["message"] == message
    assert parent["error"]["path"] == "loop" and parent["error"]["iteration_execution_id"] == children[0]["id"]

    async def again() -> dict:  # type: ignore[type-arg]
        await here.restart(parent_id)
        queue.submitted.clear()
        assert (await here.run(parent_id))["state"] == "PAUSED"  # the failed iterations are queued again
        for execution_id in [i for i in queue.submitted if i != parent_id]:
            await here.run(execution_id)
        return await here.run(parent_id)

    assert asyncio.run(again())["state"] == "SUCCESS"
    result = result_of(here, parent_id)
    # a variable made with secret() is masked whole
    assert result.output("loop") == [{"call": {"auth": "******", "n": n}} for n in (1, 2)]
    assert {c["state"] for c in store.list_executions(parent_id=parent_id)} == {"SUCCESS"}


def test_failed_iteration_fails_the_loop_and_restart_reruns_only_it(tmp_path: Path) -> None:
    flag = tmp_path / "fixed"
    flow = f"""
id: fan_fail
tasks:
  - id: loop
    type: for_each
    items: [1, 2, 3]
    distributed: true
    concurrency: 1
    tasks:
      - {{id: check, type: python, function: "tests.workers.steps:fail_on", kwargs: {{value: "{{{{ item }}}}", bad: 2, unless: "{flag}"}}}}
"""
    import asyncio

    result = run_flow(flow)
    assert result.state == "FAILED"
    assert result.error["path"] == "check[1]" and result.error["task_id"] == "check"
    children = result.engine.store.list_executions(parent_id=result.id)
    assert sorted(c["state"] for c in children) == ["FAILED", "SUCCESS"]  # fail fast: item 3 never started

    flag.write_text("yes")
    engine = result.engine

    async def again() -> dict:
        await engine.restart(result.id)
        await engine.queue.drain()  # type: ignore[attr-defined]
        return engine.store.get_execution(result.id)

    execution = asyncio.run(again())
    assert execution["state"] == "SUCCESS", execution["error"]
    children = engine.store.list_executions(parent_id=result.id)
    assert len(children) == 3 and {c["state"] for c in children} == {"SUCCESS"}
    first = next(c for c in children if c["trigger"]["index"] == 0)
    assert [s["attempt"] for s in engine.store.step_runs(first["id"])] == [1]  # not run again


@pytest.mark.postgres
def test_two_workers_take_iterations(workers: Workers, pg_url: str, redis_url: str, queue_name: str,
                                     tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    flow = f"""
id: spread
namespace: wt
tasks:
  - id: loop
    type: for_each
    items: [0, 1, 2, 3, 4, 5, 6, 7]
    distributed: true
    tasks:
      - {{id: work, type: python, function: "tests.workers.steps:record", kwargs: {{log: "{log}", name: "it{{{{ item }}}}", sleep: 0.3}}}}
  - id: child
    type: subflow
    flow: wt.leaf
    distributed: true
outputs:
  names: "{{{{ outputs.work | map(attribute='name') | list }}}}"
  leaf: "{{{{ outputs.child.outputs.ok }}}}"
"""
    leaf = """
id: leaf
namespace: wt
tasks:
  - {id: ok, type: set, values: {ok: yes}}
outputs: {ok: "{{ outputs.ok.ok }}"}
"""
    workers.spawn("--concurrency", "2")
    workers.spawn("--concurrency", "2")
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        from hub.flow.loader import load_text

        engine.deploy(load_text(leaf))
        [execution_id] = start(engine, flow)
        wait_for(lambda: all_ended(engine, [execution_id]), message="the fanned-out execution to end")
        execution = engine.store.get_execution(execution_id)
        assert execution["state"] == "SUCCESS", (execution["error"], workers.logs())
        assert execution["outputs"] == {"names": [f"it{i}" for i in range(8)], "leaf": True}
        runs = lines(log)
        assert sorted(r["name"] for r in runs) == [f"it{i}" for i in range(8)]  # each iteration once
        assert {r["pid"] for r in runs} == {p.pid for p in workers.procs}  # both workers took some
    finally:
        engine.store.close()
