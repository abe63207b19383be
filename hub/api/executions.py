"""``/v1/executions``: start, list, get with step runs, kill, restart, replay, logs, live events."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.sse import EventSourceResponse

from hub.api import sse
from hub.api.auth import Principal, require
from hub.api.context import Hub, get_hub
from hub.api.errors import (
    ApiError,
    parse_time,
)
from hub.api.flows import runnable
from hub.api.models import (
    Execution,
    ExecutionDetail,
    ExecutionList,
    ExecutionRef,
    LogLine,
    ReplayRequest,
    StartRequest,
    errors,
)
from hub.api.paging import CURSOR_HELP, NEXT_HEADERS, decode_cursor, link_next, next_cursor, start_after
from hub.engine.inputs import check_inputs
from hub.engine.states import State
from hub.errors import HubError, NotFound

router = APIRouter(prefix="/executions", tags=["executions"])
starts = APIRouter(prefix="/flows", tags=["executions"])




@starts.post(
    "/{namespace}/{flow_id}/executions", response_model=ExecutionRef, status_code=201, responses=errors(401, 403, 404, 409, 422)
)
async def start_execution(
    namespace: str, flow_id: str, body: StartRequest | None = None,
    hub: Hub = Depends(get_hub), principal: Principal = Depends(require("run")),
) -> ExecutionRef:
    """Start an execution of the newest revision with ``inputs``; it is queued, its id returned."""
    body = body or StartRequest()
    revision, flow = runnable(hub, namespace, flow_id)
    trigger: dict[str, Any] = {"type": "api"}
    if principal.key_id:  # who started it (an approval gate keeps them from approving it)
        trigger["started_by"] = f"key:{principal.key_id}"
    execution_id = await hub.engine.start(flow, body.inputs, labels=body.labels, trigger=trigger, revision=revision)
    return ExecutionRef(id=execution_id, state=State.QUEUED, flow=flow.key)


@router.get("", response_model=ExecutionList, responses=errors(400, 401, 403))
def list_executions(
    namespace: str | None = None,
    flow: str | None = Query(None, description="Flow id (with namespace) or namespace.flow_id"),
    state: list[State] | None = Query(None, description="Repeatable"),
    label: str | None = Query(None, description="key:value (or key=value)"),
    since: str | None = Query(None, description="Created at or after (epoch seconds or ISO 8601)"),
    until: str | None = Query(None, description="Created before (epoch seconds or ISO 8601)"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    offset: int = Query(0, ge=0, le=1_000_000, description="Rows to skip (costs what it skips; prefer `cursor`)."),
    hub: Hub = Depends(get_hub),
    _: Any = Depends(require("read")),
) -> ExecutionList:
    """Executions, newest first, filtered; a page ends with ``next``, the cursor of the page after it."""
    states = list(state or [])
    pair = None
    if label:
        match = re.match(r"^([^:=]+)[:=](.*)$", label)
        if not match:
            raise ApiError(400, f"label must be key:value, got {label!r}")
        pair = (match[1], match[2])
    if flow and "." in flow and not namespace:
        namespace, _, flow = flow.rpartition(".")
    after = None
    if cursor:
        if offset:
            raise ApiError(400, "give cursor or offset, not both", details=[{"path": "query.offset", "message": "with cursor"}])
        created_at, last_id = decode_cursor(cursor, (float | int, str))
        after = (float(created_at), last_id)
    rows = hub.engine.store.list_executions(
        namespace=namespace, flow_id=flow, states=states or None, label=pair,
        since=parse_time(since, "since"), until=parse_time(until, "until"), limit=limit + 1, offset=offset,
        after=after,
    )
    following = next_cursor(rows, limit, lambda r: [r["created_at"], r["id"]])
    return ExecutionList(items=[Execution(**r) for r in rows], limit=limit, offset=offset, next=following)


@router.get("/{execution_id}", response_model=ExecutionDetail, responses=errors(401, 403, 404))
def get_execution(execution_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("read"))) -> ExecutionDetail:
    """One execution with every step run (attempts, inputs, outputs, errors, timing)."""
    row = hub.engine.store.get_execution(execution_id)
    return ExecutionDetail(**row, steps=hub.engine.store.step_runs(execution_id))


@router.post("/{execution_id}/kill", response_model=Execution, responses=errors(401, 403, 404))
async def kill_execution(execution_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("run"))) -> Execution:
    """Kill it: stopped at once here, or marked KILLING for the worker that runs it."""
    return Execution(**await hub.engine.kill(execution_id))


@router.post("/{execution_id}/restart", response_model=Execution, responses=errors(401, 403, 404, 409))
async def restart_execution(
    execution_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("run"))
) -> Execution:
    """Run a FAILED, KILLED or CANCELLED execution again from its failed step (same id)."""
    return Execution(**await hub.engine.restart(execution_id))


@router.post("/{execution_id}/resume", response_model=Execution, responses=errors(401, 403, 404, 409))
async def resume_execution(execution_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("run"))) -> Execution:
    """Queue a PAUSED execution again."""
    await hub.engine.resume(execution_id)
    return Execution(**hub.engine.store.get_execution(execution_id))


@router.post(
    "/{execution_id}/replay", response_model=ExecutionRef, status_code=201,
    responses=errors(401, 403, 404, 409, 422),
)
async def replay_execution(
    execution_id: str, body: ReplayRequest, hub: Hub = Depends(get_hub), _: Any = Depends(require("run"))
) -> ExecutionRef:
    """A NEW execution of the same flow revision that reuses the committed steps before
    ``from_step`` and runs ``from_step`` and everything after it again."""
    source = hub.engine.store.get_execution(execution_id)
    if source["state"] not in (State.SUCCESS, State.WARNING, State.FAILED, State.KILLED, State.CANCELLED):
        raise HubError(f"execution {execution_id} is {source['state']}; replay an ended execution")
    _, flow = hub.engine.catalog.get(source["namespace"], source["flow_id"], source["revision"])
    top = re.split(r"[.\[]", body.from_step, maxsplit=1)[0]
    ids = [t.id for t in flow.tasks]
    if top not in ids:
        raise NotFound(f"no top-level step {top!r} in {flow.key}; steps: {', '.join(ids)}")
    upstream = set(ids[: ids.index(top)])
    inputs = check_inputs(flow, body.inputs) if body.inputs is not None else source["inputs"]
    new_id = hub.engine.store.create_execution(
        namespace=source["namespace"], flow_id=source["flow_id"], revision=source["revision"], inputs=inputs,
        state=State.QUEUED, labels=source["labels"], trigger={"type": "replay", "from": execution_id,
                                                              "step": body.from_step, "original": source["trigger"]},
        restarted_from=execution_id,
    )
    paths = {r["path"] for r in hub.engine.store.step_runs(execution_id)
             if re.split(r"[.\[]", r["path"], maxsplit=1)[0] in upstream}
    hub.engine.store.copy_steps(execution_id, new_id, paths)
    hub.engine.emit({"event": "execution", "execution_id": new_id, "state": State.QUEUED, "flow": flow.key})
    await hub.engine.queue.submit(new_id)
    return ExecutionRef(id=new_id, state=State.QUEUED, flow=flow.key)


@router.get("/{execution_id}/logs", response_model=list[LogLine], responses={**errors(401, 403, 404), 200: {"headers": NEXT_HEADERS}})
def execution_logs(
    execution_id: str, request: Request, response: Response, limit: int = Query(1000, ge=1, le=10_000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    hub: Hub = Depends(get_hub), _: Any = Depends(require("read")),
) -> list[LogLine]:
    """An execution's log lines, oldest first; the next page in ``Link`` / ``Hub-Next-Cursor``."""
    hub.engine.store.get_execution(execution_id)
    rows = hub.engine.store.logs(execution_id, limit + 1, start_after(cursor, (int,)))
    link_next(request, response, next_cursor(rows, limit, lambda r: [r["id"]]))
    return [LogLine(**row) for row in rows]


def _existing(execution_id: str, hub: Hub = Depends(get_hub)) -> dict[str, Any]:
    return hub.engine.store.get_execution(execution_id)


@router.get(
    "/{execution_id}/events", response_class=EventSourceResponse, responses=errors(401, 403, 404),
)
async def execution_events(
    execution_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("read")),
    __: Any = Depends(_existing),
) -> Any:
    """Server-sent events: ``snapshot`` (the execution and its steps now), then ``execution``,
    ``step``, ``log`` and ``token`` (a streamed model answer, piece by piece) events as they happen;
    the stream ends after the execution ends."""
    async for event in sse.execution_stream(hub, execution_id):
        yield event
