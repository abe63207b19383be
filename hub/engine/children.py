"""A flow run as a child execution from inside a leaf step (an agent's subflow tool): the
:data:`hub.tasks.base.RunFlow` hook the engine hands to every step it runs.

The child's id is derived from the caller's key, so a step that runs again after a crash finds
the child it started instead of starting a second one; a child that already ended is read, not
run again. A child that pauses leaves the parent step to pause too: when the child ends, the
engine queues the parent again (``parent_id``), and the step reads the child's outcome.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from hub.engine.control import subflow_depth
from hub.engine.run import Run
from hub.engine.states import TERMINAL, State
from hub.errors import HubError, NotFound

if TYPE_CHECKING:
    from hub.engine.base import WalkerBase

_IDS = uuid.UUID("5b0f4c1e-6a77-4b8e-9a55-0d1f2c3b4a59")  # the namespace of child execution ids


def child_id(key: str) -> str:
    """The execution id of the child started under ``key`` (stable: the same key, the same id)."""
    return uuid.uuid5(_IDS, key).hex


async def run_flow(engine: WalkerBase, run: Run, path: str, ref: str, inputs: dict[str, Any], key: str) -> dict[str, Any]:
    """Start (once per ``key``) the flow ``ref`` as a child of step ``path`` and run it here to its
    end or pause; the child's execution row."""
    execution_id = child_id(key)
    if run.row_values:  # what the run holds back for its row (its trace context) goes before the child
        held, run.row_values = run.row_values, {}
        await engine.write(run, engine.store.update_execution, run.id, **held)
    try:
        child = engine.store.get_execution(execution_id)
    except NotFound:
        depth = subflow_depth(engine, run.execution) + 1
        if depth > engine.settings.subflow_max_depth:
            raise HubError(f"flow {ref} would be nested {depth} levels deep, past the limit of "
                           f"{engine.settings.subflow_max_depth} (HUB_SUBFLOW_MAX_DEPTH)") from None
        namespace, flow_id = engine.catalog.resolve_ref(ref, run.flow.namespace)
        try:
            await engine.start(
                f"{namespace}.{flow_id}", inputs, parent_id=run.id, parent_path=path, execution_id=execution_id,
                enqueue=False, trigger={"type": "subflow", "parent_execution_id": run.id,
                                        "parent_flow": run.flow.key, "depth": depth},
            )
        except NotFound:
            raise HubError(f"flow {namespace}.{flow_id} not found; deploy it (hub run --flows DIR, or the API) "
                           "first") from None
        child = engine.store.get_execution(execution_id)
    if child["state"] not in TERMINAL and child["state"] != State.PAUSED:
        child = await engine.run(execution_id)
    return child
