"""Trace pages: recent traces, and an execution's waterfall (spans with their attributes and events,
GenAI spans with prompt, model, tokens and cost, links to the traces of its subflows)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from hub.api.errors import parse_time
from hub.console import queries
from hub.console.render import render
from hub.console.session import ConsoleRoute, Viewer, hub_of, viewer
from hub.console.timeline import waterfall
from hub.telemetry import review, spanstore

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


@router.get("/traces")
def traces_list(
    request: Request, flow: str | None = None, state: str | None = None, since: str | None = None,
    errors: bool = False, min_ms: float | None = Query(None, ge=0), who: Viewer = Depends(viewer),
) -> Response:
    """Executions with a stored trace, newest first."""
    store = hub_of(request).engine.store
    found, _ = spanstore.trace_page(
        store.engine, flow=flow or None, state=state or None, since=parse_time(since or None, "since"), until=None,
        min_duration_ms=min_ms, errors_only=errors, limit=100,
    )
    return render(request, who, "traces.html", title="Traces", traces=found,
                  form={"flow": flow or "", "state": state or "", "since": since or "", "errors": errors,
                        "min_ms": "" if min_ms is None else min_ms})


@router.get("/executions/{execution_id}/trace")
def trace_page(request: Request, execution_id: str, who: Viewer = Depends(viewer)) -> Response:
    store = hub_of(request).engine.store
    trace = review.execution_trace(store, execution_id)
    steps = store.step_runs(trace["execution_id"])
    subflows = sorted({s["data"]["child_id"] for s in steps
                       if s["task_type"] == "subflow" and (s.get("data") or {}).get("child_id")})
    linked = queries.children(store, trace["execution_id"])
    known = {c["id"] for c in linked}
    for child_id in subflows:
        if child_id not in known:
            try:
                row = store.get_execution(child_id)
            except Exception:
                continue
            linked.append({"id": row["id"], "namespace": row["namespace"], "flow_id": row["flow_id"],
                           "state": row["state"], "parent_path": None, "trace_id": row["trace_id"]})
    return render(request, who, "trace.html", title=f"Trace of {execution_id[:12]}", trace=trace,
                  rows=waterfall(trace), linked=linked)
