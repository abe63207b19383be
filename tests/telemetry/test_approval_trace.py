"""The real approval gate in a trace: paused on one engine, decided, resumed on another — one
trace id end to end, the wait visible, and who decided on the resumed step's span."""

from __future__ import annotations

from hub.approvals import install as install_approvals
from hub.core import attributes as A
from tests.telemetry.conftest import named, sync, tree

FLOW = """
id: refund
namespace: tests
tasks:
  - id: fan
    type: parallel
    tasks:
      - {id: a, type: set, values: {x: 1}}
      - {id: b, type: set, values: {y: 2}}
  - id: gate
    type: approval
    message: "Refund order 42?"
    approvers: ["key:finance"]
  - {id: after, type: set, values: {decision: "{{ outputs.gate.decision }}"}}
outputs:
  decision: "{{ outputs.after.decision }}"
"""


@sync
async def test_an_approval_paused_on_one_engine_and_resumed_on_another_is_one_trace(traced) -> None:
    first = traced()
    install_approvals(first.engine)
    row = await first.engine.execute(first.flow(FLOW))
    assert row["state"] == "PAUSED"
    spans_a = first.spans()
    assert tree(spans_a) == [
        ("execution tests.refund", [("step fan", [("step a", []), ("step b", [])]), ("step gate", [])]),
    ]
    paused = named(spans_a, "step gate")[0]
    assert paused.attributes[A.STEP_STATE] == "PAUSED"
    assert [e.name for e in paused.events][-1] == A.EVENT_PAUSED  # after the step's log lines

    # another process takes the decision (through the API's service) and runs the continuation
    second = traced()
    approvals = install_approvals(second.engine)
    gate = approvals.gates()[0]
    approvals.decide(gate["id"], ["key:finance"], "api", "approve", comment="ok")
    await approvals.after_decision(approvals.get(gate["id"]))  # what the API does: queue the continuation
    await second.engine.queue.drain()
    done = second.engine.store.get_execution(row["id"])
    assert done["state"] == "SUCCESS", done["error"]
    assert done["outputs"] == {"decision": "approved"}

    spans_b = second.spans()
    assert tree(spans_b) == [("resume tests.refund", [("step gate", []), ("step after", [])])]
    root = named(spans_a, "execution tests.refund")[0]
    assert {s.context.trace_id for s in spans_a + spans_b} == {root.context.trace_id}
    decided = named(spans_b, "step gate")[0]
    assert decided.attributes[A.STEP_RESUMED] is True
    assert "key:finance" in decided.attributes[A.DECIDED_BY]
    assert A.EVENT_RESUMED in [e.name for e in decided.events]
    assert decided.links and decided.links[0].context.span_id == paused.context.span_id
