"""Execution pages: the filtered list (keyset paging), one execution with its Gantt, steps, logs,
inputs and outputs, errors and LLM calls, live over server-sent events, and the actions kill,
restart, resume and replay (the same calls as ``/v1/executions``)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from hub.api import executions as api_executions
from hub.api import sse
from hub.api.errors import ApiError, parse_time
from hub.api.models import ReplayRequest
from hub.console import queries
from hub.console.graph import depths
from hub.console.render import render
from hub.console.session import ConsoleRoute, Viewer, form, hub_of, state_of, viewer
from hub.console.timeline import gantt
from hub.engine.states import State
from hub.errors import HubError

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

STATES = [s.value for s in State]
ENDED = {"SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED"}


def _filters(namespace: str | None, flow: str | None, state: list[str], label: str | None, since: str | None,
             until: str | None) -> queries.Filters:
    pair = None
    if label:
        match = re.match(r"^([^:=]+)[:=](.*)$", label)
        if not match:
            raise ApiError(400, f"label must be key:value, got {label!r}")
        pair = (match[1].strip(), match[2].strip())
    if flow and "." in flow and not namespace:
        namespace, _, flow = flow.rpartition(".")
    unknown = [s for s in state if s not in STATES]
    if unknown:
        raise ApiError(400, f"unknown state {unknown[0]!r}; states: {', '.join(STATES)}")
    return queries.Filters(namespace=namespace or None, flow=flow or None, states=tuple(state), label=pair,
                           since=parse_time(since or None, "since"), until=parse_time(until or None, "until"))


@router.get("/executions")
def executions_list(
    request: Request, namespace: str | None = None, flow: str | None = None,
    state: list[str] = Query(default_factory=list), label: str | None = None, since: str | None = None,
    until: str | None = None, before: str | None = None, who: Viewer = Depends(viewer),
) -> Response:
    """Executions newest first, filtered by state, flow, namespace, label and time, paged by cursor."""
    hub = hub_of(request)
    filters = _filters(namespace, flow, [s for s in state if s], label, since, until)
    page = queries.executions_page(hub.engine.store, filters, state_of(request).settings.page_size, before)
    query = [(k, v) for k, v in request.query_params.multi_items() if k != "before" and v]
    flows = [f"{r['namespace']}.{r['flow_id']}" for r in hub.engine.store.list_flows()]
    return render(request, who, "executions.html", title="Executions", page=page, states=STATES, query=query,
                  chosen=set(filters.states), flows=flows, form={"namespace": namespace or "", "flow": flow or "",
                  "label": label or "", "since": since or "", "until": until or ""}, before=before)


def _view(request: Request, execution_id: str) -> dict[str, Any]:
    """Everything the execution page shows."""
    hub = hub_of(request)
    store = hub.engine.store
    execution = store.get_execution(execution_id)
    steps = store.step_runs(execution_id)
    now = time.time()
    calls: list[dict[str, Any]] = []
    totals: dict[str, Any] = {}
    try:
        from hub.llm.records import CallLog

        log = CallLog(store.engine)
        calls, totals = log.calls(execution_id), log.totals(execution_id)
    except ImportError:
        pass
    top = sorted({re.split(r"[.\[]", s["path"], maxsplit=1)[0] for s in steps}, key=lambda p: min(
        s["id"] for s in steps if re.split(r"[.\[]", s["path"], maxsplit=1)[0] == p))
    subflows = [s["data"]["child_id"] for s in steps if s["task_type"] == "subflow" and (s.get("data") or {}).get("child_id")]
    try:
        _, flow = hub.engine.catalog.get(execution["namespace"], execution["flow_id"], execution["revision"])
        nesting = depths(flow)
    except HubError:  # the revision no longer loads (a task kind gone): indent by path instead
        nesting = {}
    return {
        "execution": execution, "steps": steps, "chart": gantt(execution, steps, now, nesting),
        "logs": store.logs(execution_id, 500), "calls": calls, "totals": totals,
        "children": queries.children(store, execution_id), "subflows": sorted(set(subflows)),
        "ended": execution["state"] in ENDED, "top_steps": top, "now": now,
    }


@router.get("/executions/{execution_id}")
def execution_page(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    view = _view(request, execution_id)
    return render(request, who, "execution.html", title=f"Execution {execution_id[:12]}", **view)


@router.get("/executions/{execution_id}/live")
def execution_live(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    """The part of the execution page that changes while it runs (swapped in by console.js)."""
    return render(request, who, "_execution_live.html", **_view(request, execution_id))


@router.get("/executions/{execution_id}/events", response_class=EventSourceResponse)
async def execution_events(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> AsyncIterator[ServerSentEvent]:
    """The API's live stream (``snapshot``, ``step``, ``execution``, ``log``, ``end``) for the page."""
    hub = hub_of(request)
    hub.engine.store.get_execution(execution_id)
    async for event in sse.execution_stream(hub, execution_id):
        yield event


async def _act(request: Request, who: Viewer) -> dict[str, str]:
    fields = await form(request, who)
    who.need("run")
    return fields


def _back(execution_id: str, note: str) -> Response:
    return RedirectResponse(f"/executions/{execution_id}?done={note}", status_code=303)


@router.post("/executions/{execution_id}/kill")
async def kill(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    await _act(request, who)
    await api_executions.kill_execution(execution_id, hub_of(request), who.principal)
    return _back(execution_id, "killed")


@router.post("/executions/{execution_id}/restart")
async def restart(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    await _act(request, who)
    await api_executions.restart_execution(execution_id, hub_of(request), who.principal)
    return _back(execution_id, "restarted")


@router.post("/executions/{execution_id}/resume")
async def resume(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    await _act(request, who)
    await api_executions.resume_execution(execution_id, hub_of(request), who.principal)
    return _back(execution_id, "resumed")


@router.post("/executions/{execution_id}/replay")
async def replay(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    """A new execution from a chosen top-level step (the ones before it are reused)."""
    fields = await _act(request, who)
    step = fields.get("from_step", "").strip()
    if not step:
        raise ApiError(422, "choose the step to replay from")
    ref = await api_executions.replay_execution(execution_id, ReplayRequest(from_step=step), hub_of(request),
                                                who.principal)
    return RedirectResponse(f"/executions/{ref.id}?done=replayed", status_code=303)
