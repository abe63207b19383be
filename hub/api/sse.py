"""Live execution updates as server-sent events.

Events come from the engine's listeners when the execution runs in this process; when a worker
elsewhere runs it, the store is polled and changes are sent as the same events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi.sse import ServerSentEvent
from pydantic_core import to_jsonable_python

from hub.api.context import Hub
from hub.engine.states import TERMINAL

POLL = 1.0


def _step_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["id"], row["state"])


def _step_event(row: dict[str, Any]) -> dict[str, Any]:
    duration = (row["ended_at"] - row["started_at"]) if row.get("ended_at") else None
    return {
        "event": "step", "execution_id": row["execution_id"], "path": row["path"], "task_id": row["task_id"],
        "type": row["task_type"], "state": row["state"], "attempt": row["attempt"], "duration": duration,
        "error": row["error"],
    }


async def execution_stream(hub: Hub, execution_id: str) -> AsyncIterator[ServerSentEvent]:
    store = hub.engine.store
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def listener(event: dict[str, Any]) -> None:
        if event.get("execution_id") == execution_id:
            queue.put_nowait(event)

    hub.engine.listeners.append(listener)
    try:
        execution = store.get_execution(execution_id)
        steps = store.step_runs(execution_id)
        seen_steps = {_step_key(r) for r in steps}
        state = execution["state"]
        seq = 0
        yield ServerSentEvent(
            event="snapshot", id=str(seq),
            data=to_jsonable_python({"execution": execution, "steps": steps}, fallback=str),
        )
        while state not in TERMINAL:
            try:
                async with asyncio.timeout(POLL):
                    event = await queue.get()
            except TimeoutError:
                # nothing from this process: look at the store (a worker elsewhere may run it)
                execution = store.get_execution(execution_id)
                for row in store.step_runs(execution_id):
                    if _step_key(row) not in seen_steps:
                        seen_steps.add(_step_key(row))
                        seq += 1
                        yield ServerSentEvent(event="step", id=str(seq), data=to_jsonable_python(_step_event(row)))
                if execution["state"] != state:
                    state = execution["state"]
                    seq += 1
                    yield ServerSentEvent(event="execution", id=str(seq), data=to_jsonable_python({
                        "event": "execution", "execution_id": execution_id, "state": state,
                        "flow": f"{execution['namespace']}.{execution['flow_id']}", "error": execution["error"],
                    }))
                continue
            seq += 1
            if event["event"] == "execution":
                state = event["state"]
            yield ServerSentEvent(event=event["event"], id=str(seq), data=to_jsonable_python(event, fallback=str))
        seq += 1
        final = store.get_execution(execution_id)
        yield ServerSentEvent(event="end", id=str(seq), data=to_jsonable_python(
            {"execution_id": execution_id, "state": final["state"], "outputs": final["outputs"]}, fallback=str))
    finally:
        if listener in hub.engine.listeners:
            hub.engine.listeners.remove(listener)
