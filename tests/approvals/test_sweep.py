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


def test_a_process_builds_its_approvals_service_only_when_a_decided_gate_waits(store) -> None:  # type: ignore[no-untyped-def]
    """The plugin installs a sweep and a kill listener, not the service (its channels and table
    models): a worker whose flows have no gate never builds it, and one still resumes a gate
    decided while no process could."""
    from hub.approvals import Pending
    from hub.approvals.service import Approvals
    from hub.service.runtime import install_plugins

    engine = make_engine(store)

    async def go() -> dict:
        idle = make_engine(store)
        install_plugins(idle)
        assert await idle.resume_interrupted(run_now=True) == []
        assert isinstance(idle.services["approvals"], Pending)  # nothing to resume: never built

        execution = await engine.execute(load_text(FLOW))
        approvals = install(engine)
        approvals.engine = None
        approvals.decide(approvals.gates()[0]["id"], ["key:ops"], "api", "approve", comment="fine")
        fresh = make_engine(store)
        install_plugins(fresh)
        resumed = await fresh.resume_interrupted(run_now=True)
        await fresh.queue.drain()
        assert execution["id"] in resumed
        assert isinstance(fresh.services["approvals"], Approvals)
        return fresh.store.get_execution(execution["id"])

    done = asyncio.run(go())
    assert done["state"] == "SUCCESS", done["error"]
