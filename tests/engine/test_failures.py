"""Retries, timeouts, allow_failure, error handlers and finally."""

from __future__ import annotations

import random

import pytest

from hub.engine.clock import FakeClock
from hub.testing import make_engine, run_flow
from tests import helpers


@pytest.fixture(autouse=True)
def _reset() -> None:
    helpers.reset()


def engine_with_clock(store=None):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    engine = make_engine(store, clock=clock)
    engine.rng = random.Random(7)
    return engine, clock


def test_exponential_retry_counts_attempts_and_backs_off(store) -> None:
    engine, clock = engine_with_clock(store)
    result = run_flow(
        """
id: r
tasks:
  - id: call
    type: python
    function: tests.helpers:flaky
    kwargs: {name: api, failures: 3}
    retry: {type: exponential, max_attempts: 5, interval: 1s, max_interval: 3s, jitter: 0}
""",
        engine=engine,
    )
    assert result.state == "SUCCESS"
    runs = result.runs("call")
    assert [r["attempt"] for r in runs] == [1, 2, 3, 4]
    assert [r["state"] for r in runs] == ["FAILED", "FAILED", "FAILED", "SUCCESS"]
    assert clock.sleeps == [1.0, 2.0, 3.0]  # 1, 2, 4 capped at 3
    assert runs[0]["error"]["retry_in"] == 1.0
    assert result.output("call") == {"calls": 4}


def test_constant_retry_with_jitter_stays_in_its_band() -> None:
    engine, clock = engine_with_clock()
    result = run_flow(
        """
id: r
tasks:
  - id: call
    type: python
    function: tests.helpers:flaky
    kwargs: {name: api, failures: 2}
    retry: {type: constant, max_attempts: 3, interval: 10s, jitter: 0.2}
""",
        engine=engine,
    )
    assert result.state == "SUCCESS"
    assert len(clock.sleeps) == 2 and all(8.0 <= s <= 12.0 for s in clock.sleeps)


def test_retries_give_up_after_max_attempts_and_max_duration() -> None:
    engine, clock = engine_with_clock()
    result = run_flow(
        """
id: r
tasks:
  - id: call
    type: python
    function: tests.helpers:flaky
    kwargs: {name: api, failures: 10}
    retry: {type: constant, max_attempts: 3, interval: 1s, jitter: 0}
""",
        engine=engine,
    )
    assert result.state == "FAILED"
    assert len(result.runs("call")) == 3 and clock.sleeps == [1.0, 1.0]
    assert result.error["message"] == "ConnectionError: api failed (call 3)"
    helpers.reset()
    engine, clock = engine_with_clock()
    result = run_flow(
        """
id: r2
tasks:
  - id: call
    type: python
    function: tests.helpers:flaky
    kwargs: {name: api, failures: 10}
    retry: {type: exponential, max_attempts: 10, interval: 10s, max_duration: 1m, jitter: 0}
""",
        engine=engine,
    )
    assert clock.sleeps == [10.0, 20.0]  # the next wait (40s) would pass the 1m budget
    assert len(result.runs("call")) == 3


def test_non_retryable_errors_are_not_retried() -> None:
    engine, clock = engine_with_clock()
    result = run_flow(
        """
id: r
retry: {max_attempts: 5, interval: 1s}
tasks:
  - {id: stop, type: fail, message: "bad order"}
""",
        engine=engine,
    )
    assert result.state == "FAILED"
    assert len(result.runs("stop")) == 1 and clock.sleeps == []
    assert result.error == {
        "type": "FailTask", "message": "bad order", "retryable": False, "task_id": "stop", "path": "stop",
    }


def test_python_errors_keep_the_traceback() -> None:
    result = run_flow("id: t\ntasks:\n  - {id: boom, type: python, function: 'tests.helpers:always_fails', kwargs: {message: kaput}}\n")
    error = result.step("boom")["error"]
    assert error["message"] == "ValueError: kaput"
    assert 'raise ValueError(message)' in error["data"]["traceback"]


def test_task_timeout_fails_clearly_and_is_retried() -> None:
    engine, clock = engine_with_clock()
    result = run_flow(
        """
id: t
tasks:
  - id: sleepy
    type: python
    function: tests.helpers:slow
    kwargs: {seconds: 5}
    timeout: 50ms
    retry: {type: constant, max_attempts: 2, interval: 1s, jitter: 0}
""",
        engine=engine,
    )
    assert result.state == "FAILED"
    runs = result.runs("sleepy")
    assert len(runs) == 2
    assert runs[-1]["error"]["type"] == "TaskTimeout"
    assert runs[-1]["error"]["message"] == "task sleepy timed out after 50ms"


def test_flow_timeout() -> None:
    result = run_flow(
        "id: t\ntimeout: 100ms\ntasks:\n  - {id: sleepy, type: python, function: 'tests.helpers:slow', kwargs: {seconds: 5}}\n"
    )
    assert result.state == "FAILED"
    assert result.error["type"] == "FlowTimeout"
    assert result.step("sleepy")["state"] == "KILLED"


def test_a_flow_timeout_ends_the_loop_it_cut_short(store) -> None:
    result = run_flow(
        "id: t\ntimeout: 100ms\ntasks:\n  - id: each\n    type: for_each\n    items: [1, 2]\n    tasks:\n"
        "      - {id: sleepy, type: python, function: 'tests.helpers:slow', kwargs: {seconds: 5}}\n",
        store=store,
    )
    assert result.error["type"] == "FlowTimeout"
    states = {s["path"]: s["state"] for s in result.steps}
    assert states["each"] == "FAILED" and "RUNNING" not in states.values(), states


def test_allow_failure_gives_warning_and_continues(store) -> None:
    result = run_flow(
        """
id: w
tasks:
  - {id: optional, type: fail, message: meh, allow_failure: true}
  - {id: after, type: set, values: {ran: true}}
""",
        store=store,
    )
    assert result.state == "WARNING"
    assert result.step("optional")["state"] == "WARNING"
    assert result.output("after") == {"ran": True}


def test_error_handlers_see_the_error_and_finally_always_runs(store) -> None:
    result = run_flow(
        """
id: e
tasks:
  - {id: ok, type: set, values: {v: 1}}
  - {id: broken, type: fail, message: "card declined"}
  - {id: never, type: log, message: unreachable}
errors:
  - {id: alert, type: set, values: {text: "{{ error.task_id }}: {{ error.message }}", v: "{{ outputs.ok.v }}"}}
finally:
  - {id: cleanup, type: set, values: {had_error: "{{ error is defined }}"}}
""",
        store=store,
    )
    assert result.state == "FAILED"
    assert result.output("alert") == {"text": "broken: card declined", "v": 1}
    assert result.output("cleanup") == {"had_error": True}
    assert not result.runs("never")
    ok = run_flow(
        "id: f\ntasks:\n  - {id: a, type: set, values: {v: 1}}\nerrors:\n  - {id: alert, type: log, message: x}\nfinally:\n  - {id: cleanup, type: log, message: done}\n",
        store=store,
    )
    assert ok.state == "SUCCESS"
    assert not ok.runs("alert") and ok.step("cleanup")["state"] == "SUCCESS"


def test_runtime_expression_error_names_expression_and_missing_name() -> None:
    result = run_flow(
        """
id: x
inputs: [{id: order, type: json}]
tasks:
  - {id: total, type: set, values: {sum: "{{ inputs.order.amount * 2 }}"}}
""",
        {"order": {"id": 1}},
    )
    assert result.state == "FAILED"
    message = result.error["message"]
    assert "'dict object' has no attribute 'amount'" in message
    assert "{{ inputs.order.amount * 2 }}" in message
    assert message.startswith("total.values.sum:")
    assert result.error["retryable"] is False


def test_failed_output_of_an_earlier_task_is_named_when_missing() -> None:
    result = run_flow(
        """
id: x
tasks:
  - {id: maybe, type: set, values: {v: 1}, if: "false"}
  - {id: use, type: log, message: "{{ outputs.maybe.v }}"}
""",
    )
    assert result.state == "FAILED"
    assert "maybe" in result.error["message"]


def test_invalid_parameters_after_rendering() -> None:
    result = run_flow(
        "id: x\ninputs: [{id: n, type: string}]\ntasks:\n  - {id: loop, type: parallel, concurrency: '{{ inputs.n }}', tasks: [{id: a, type: log, message: hi}]}\n  - {id: req, type: http.request, url: 'http://x', method: '{{ inputs.n }}'}\n",
        {"n": "PUTT"},
    )
    assert result.state == "FAILED"
    assert result.error["type"] == "InvalidParameters"
    assert result.error["message"].startswith("parameters of loop after rendering: concurrency:")
    result = run_flow(
        "id: x\ninputs: [{id: n, type: string}]\ntasks:\n  - {id: req, type: http.request, url: 'http://x', method: '{{ inputs.n }}'}\n",
        {"n": "PUTT"},
    )
    assert result.error["type"] == "InvalidParameters"
    assert result.error["message"].startswith("parameters of req after rendering: method:")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("duration: '{{ inputs.v }}'", "parameters of pause after rendering: duration: Value error, 'soon' is not a duration"),
        ("until: '{{ inputs.v }}'", "parameters of pause after rendering: until: 'soon' is not an ISO 8601 date-time"),
    ],
)
def test_invalid_wait_parameters_fail_the_step(params: str, message: str) -> None:
    """(they used to escape the engine as a raw error and leave the execution RUNNING)"""
    result = run_flow(
        f"id: x\ninputs: [{{id: v, type: string}}]\ntasks:\n  - {{id: pause, type: wait, {params}}}\n", {"v": "soon"}
    )
    assert result.state == "FAILED"
    assert result.error["type"] == "InvalidParameters"
    assert result.error["message"].startswith(message)
    assert result.step("pause")["state"] == "FAILED"


def test_an_execution_whose_flow_revision_is_gone_fails_once_with_the_reason(store) -> None:
    """A queued execution of a flow revision this store does not have (a restored backup, rows
    copied by hand): FAILED, saying which flow, instead of crashing every time a worker sweeps."""
    import asyncio

    engine = make_engine(store)
    execution_id = store.create_execution(namespace="gone", flow_id="nowhere", revision=3, inputs={}, state="QUEUED")
    row = asyncio.run(engine.run(execution_id))
    assert row["state"] == "FAILED"
    assert row["error"]["type"] == "FlowUnavailable"
    assert "gone.nowhere@3" in row["error"]["message"] and row["ended_at"] is not None
    assert asyncio.run(engine.run(execution_id))["state"] == "FAILED"  # ended: nothing runs again
    assert execution_id not in {e["id"] for e in store.unfinished_executions()}


def test_a_failing_if_condition_with_allow_failure_warns_and_goes_on(store) -> None:
    result = run_flow(
        """
id: x
inputs: [{id: order, type: json}]
tasks:
  - {id: maybe, type: log, message: hi, if: "{{ inputs.order.missing.deeper }}", allow_failure: true}
  - {id: after, type: set, values: {ran: true}}
""",
        {"order": {}},
        store=store,
    )
    assert result.state == "WARNING"
    assert result.step("maybe")["state"] == "WARNING"
    assert result.step("maybe")["error"]["message"].startswith("maybe.if:")
    assert result.output("after") == {"ran": True}


def test_a_task_type_this_engine_lacks_fails_the_step_or_warns_with_allow_failure(store) -> None:
    """A flow validated against another registry (a plugin missing here)."""
    from hub.core.registry import Registry
    from hub.engine.runner import Engine
    from hub.flow.loader import load_text
    from hub.tasks.core import Set

    flow = load_text(
        "id: x\ntasks:\n  - {id: note, type: log, message: hi, allow_failure: true}\n"
        "  - {id: after, type: set, values: {ran: true}}\n"
    )
    registry = Registry()  # no plugins: 'set' only, 'log' is missing here
    registry.add(Set)
    engine = Engine(store, registry=registry)
    result = run_flow(flow, engine=engine)
    assert result.state == "WARNING"
    assert result.step("note")["error"]["type"] == "UnknownTaskType"
    assert result.output("after") == {"ran": True}


BAD_VARIABLES = """
id: v
inputs: [{id: n, type: int, default: 4}]
variables: {team: ops, bad: "EXPR"}
tasks:
  - {id: first, type: set, values: {v: "{{ vars.bad }}"}}
errors:
  - {id: alert, type: set, values: {text: "{{ error.message }}", kind: "{{ error.type }}", team: "{{ vars.team }}"}}
finally:
  - {id: cleanup, type: set, values: {had_error: "{{ error is defined }}"}}
"""


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("{{ trigger.body.missing.x }}", "'dict object' has no attribute 'body'"),
        ("{{ inputs.n / 0 }}", "ZeroDivisionError: division by zero"),
    ],
)
def test_a_variable_that_fails_to_render_fails_the_execution_and_runs_its_handlers(
    store, expression: str, problem: str
) -> None:
    """(it used to escape the engine and leave the execution RUNNING for good)"""
    result = run_flow(BAD_VARIABLES.replace("EXPR", expression), store=store)
    assert result.state == "FAILED"
    message = f"variables.bad: {problem} (in expression {expression!r})"
    assert result.error == {"type": "ExpressionError", "message": message, "retryable": False}
    assert result.execution["ended_at"] is not None and result.execution["owner"] is None
    assert not result.runs("first")  # no task runs over variables that are not there
    # the handlers run as for any failure, with the error and the variables that did render
    assert result.output("alert") == {"text": message, "kind": "ExpressionError", "team": "ops"}
    assert result.output("cleanup") == {"had_error": True}
    assert result.id not in {e["id"] for e in store.unfinished_executions()}


def test_a_handler_that_uses_the_variable_that_failed_fails_but_the_error_stays(store) -> None:
    result = run_flow(
        "id: v\nvariables: {bad: '{{ trigger.body.x }}'}\ntasks:\n  - {id: a, type: log, message: hi}\n"
        "errors:\n  - {id: alert, type: log, message: '{{ vars.bad }}'}\n"
        "finally:\n  - {id: cleanup, type: log, message: '{{ vars.bad }}'}\n",
        store=store,
    )
    assert result.state == "FAILED"
    assert result.error["message"].startswith("variables.bad: ")
    assert "vars has no variable 'bad'" in result.step("alert")["error"]["message"]
    assert result.step("cleanup")["state"] == "FAILED"


def test_a_subflow_whose_variables_fail_ends_failed_and_fails_its_parent(store) -> None:
    from hub.flow.loader import load_text

    engine = make_engine(store)
    engine.deploy(load_text(
        "id: child\nnamespace: team\ninputs: [{id: n, type: int}]\nvariables: {half: '{{ inputs.n / 0 }}'}\n"
        "tasks:\n  - {id: a, type: set, values: {v: '{{ vars.half }}'}}\n"
    ))
    result = run_flow("id: p\nnamespace: team\ntasks:\n  - {id: go, type: subflow, flow: child, inputs: {n: 1}}\n",
                      engine=engine)
    assert result.state == "FAILED"
    children = store.list_executions(parent_id=result.id)
    assert [c["state"] for c in children] == ["FAILED"]
    assert children[0]["error"]["message"].startswith("variables.half: ZeroDivisionError")
    assert "variables.half: ZeroDivisionError" in result.error["message"]
    assert result.error["path"] == "go"


def test_variables_that_fail_when_a_paused_execution_resumes_end_it_failed(store, monkeypatch) -> None:
    """The variables are rendered again when a paused execution goes on; a secret removed
    meanwhile ends it FAILED with the reason (it was left RUNNING)."""
    import asyncio

    monkeypatch.setenv("HUB_SECRET_TOKEN", "tok-123456789")
    engine, clock = engine_with_clock(store)
    paused = run_flow(
        "id: p\nvariables: {auth: \"Bearer {{ secret('TOKEN') }}\"}\ntasks:\n"
        "  - {id: first, type: set, values: {v: 1}}\n  - {id: later, type: wait, duration: 1h}\n"
        "  - {id: after, type: log, message: '{{ vars.auth }}'}\n"
        "errors:\n  - {id: alert, type: set, values: {text: '{{ error.message }}'}}\n",
        engine=engine, drain=False,
    )
    assert paused.state == "PAUSED"
    monkeypatch.delenv("HUB_SECRET_TOKEN")
    clock.now += 3600

    async def resume() -> dict:  # type: ignore[type-arg]
        await engine.queue.close()
        await engine.resume_interrupted(run_now=True)
        return engine.store.get_execution(paused.id)

    row = asyncio.run(resume())
    assert row["state"] == "FAILED" and row["ended_at"] is not None and row["resume_at"] is None
    assert row["error"]["type"] == "ExpressionError"
    assert row["error"]["message"].startswith("variables.auth: secret 'TOKEN' is not set")
    assert "{{ secret('TOKEN') }}" in row["error"]["message"]
    steps = {s["path"]: s["state"] for s in engine.store.step_runs(paused.id)}
    assert steps["first"] == "SUCCESS" and "after" not in steps and steps["alert"] == "SUCCESS"
    # the wait it was paused in ended when its time came, through its resume token, before the
    # run that failed on the variables
    assert steps["later"] == "SUCCESS"
