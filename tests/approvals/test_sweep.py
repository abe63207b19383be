"""A decision saved while no process could resume the execution is picked up by the sweep."""

from __future__ import annotations

import asyncio

from hub.approvals import install
from hub.flow.loader import load_text
from hub.testing import make_engine

FLOW = """
id: gated
tasks:
  - {id: gate, type: approval, message: "ship it?", approvers: ["key:ops"]}
  - {id: after, type: set, values: {decision: "{{ outputs.gate.decision }}"}}
"""


def test_decided_gate_of_a_paused_execution_is_resumed_by_the_sweep(store) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(store)

    async def go() -> dict:
        execution = await engine.execute(load_text(FLOW))
        assert execution["state"] == "PAUSED"
        # a decision written by a process that died before it could resume the execution
        approvals = install(engine)
        gate = approvals.gates()[0]
        approvals.engine = None
        approvals.decide(gate["id"], ["key:ops"], "api", "approve", comment="fine")
        assert engine.store.get_execution(execution["id"])["state"] == "PAUSED"
        # a new process starts: its sweep finds the decided gate and resumes the execution
        fresh = make_engine(store)
        install(fresh)
        resumed = await fresh.resume_interrupted(run_now=True)
        await fresh.queue.drain()
        assert execution["id"] in resumed
        return fresh.store.get_execution(execution["id"])

    done = asyncio.run(go())
    assert done["state"] == "SUCCESS", done["error"]
