"""Flow pages: the list by namespace, one flow (graph, source, revisions, executions, triggers), the
editor that validates as you type, revision diffs and the run form built from the typed inputs."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from hub.api import flows as api_flows
from hub.api.models import StartRequest
from hub.console import queries
from hub.console.graph import flow_graph
from hub.console.render import render
from hub.console.session import ConsoleRoute, Viewer, check_csrf, form, hub_of, viewer
from hub.errors import FlowError, HubError, InputError, Location

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)

NEW_FLOW = """\
id: my_flow
namespace: default
description: What this flow does.
inputs:
  - {id: name, type: string, default: world}
tasks:
  - {id: greet, type: log, message: "hello {{ inputs.name }}"}
"""


def _trigger_states(request: Request, namespace: str | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
    try:
        from hub.triggers.state import trigger_states
    except ImportError:
        return {}
    rows = trigger_states(hub_of(request).engine.store, namespace, None)
    return {(s["namespace"], s["flow_id"], s["trigger_id"]): s for s in rows}


@router.get("/")
async def home(who: Viewer = Depends(viewer)) -> Response:
    return RedirectResponse("/flows", status_code=303)


@router.get("/flows")
def flows_list(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """Every flow by namespace with its newest execution and its triggers."""
    hub = hub_of(request)
    rows = hub.engine.store.list_flows()
    last = queries.last_executions(hub.engine.store, [(r["namespace"], r["flow_id"]) for r in rows])
    states = _trigger_states(request)
    namespaces: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["namespace"], row["flow_id"])
        entry: dict[str, Any] = {"namespace": row["namespace"], "id": row["flow_id"], "revision": row["revision"],
                                 "disabled": bool(row["disabled"]), "last": last.get(key), "triggers": [],
                                 "description": None, "problem": None}
        try:
            _, flow = hub.engine.catalog.get(row["namespace"], row["flow_id"], row["revision"])
            entry["description"] = flow.description
            entry["disabled"] = entry["disabled"] or flow.disabled
            for t in flow.triggers:
                state = states.get((*key, t.id)) or {}
                entry["triggers"].append({"id": t.id, "type": t.type, "off": t.disabled or bool(state.get("disabled")),
                                          "error": state.get("last_error")})
        except HubError as exc:
            entry["problem"] = str(exc)
        namespaces.setdefault(row["namespace"], []).append(entry)
    return render(request, who, "flows.html", title="Flows", namespaces=namespaces)


@router.get("/flows/new")
def new_flow(request: Request, who: Viewer = Depends(viewer)) -> Response:
    who.need("admin")
    return render(request, who, "flow_edit.html", title="New flow", flow=None, source=NEW_FLOW, errors=[])


@router.post("/flows/-/validate")
async def validate(request: Request, who: Viewer = Depends(viewer)) -> JSONResponse:
    """The editor's check as you type: ``{"valid", "flow", "errors": [{line, column, path, message}]}``,
    the same locations and messages as ``hub validate`` and ``POST /v1/flows/validate``."""
    check_csrf(request, who, None)
    body = await request.body()
    if len(body) > hub_of(request).settings.max_body:
        return JSONResponse({"valid": False, "errors": [{"line": None, "column": None, "path": "<root>",
                                                         "message": "the flow is too large"}]})
    text = body.decode("utf-8", "replace")
    if not text.strip():
        return JSONResponse({"valid": False, "errors": [{"line": 1, "column": 1, "path": "<root>",
                                                         "message": "the flow is empty"}]})
    try:
        flow = hub_of(request).engine.catalog.loader.load_text(text, None)
    except FlowError as exc:
        return JSONResponse({"valid": False, "errors": [loc.to_dict() for loc in exc.locations]})
    return JSONResponse({"valid": True, "flow": flow.key, "errors": []})


@router.post("/flows/-/save")
async def save(request: Request, who: Viewer = Depends(viewer)) -> Response:
    """Save the editor's YAML as a new revision (admin); errors show in the editor, nothing saved."""
    fields = await form(request, who)
    who.need("admin")
    source = fields.get("source", "").replace("\r\n", "\n")
    hub = hub_of(request)
    try:
        if not source.strip():
            raise FlowError([Location((), "the flow is empty; write its YAML", line=1, column=1)])
        flow = hub.engine.catalog.loader.load_text(source, None)
    except FlowError as exc:
        errors = [loc.to_dict() for loc in exc.locations]
        return render(request, who, "flow_edit.html", status=422, title="Edit flow", flow=fields.get("flow"),
                      source=source, errors=errors)
    revision, created = api_flows.save(hub, flow)
    note = f"saved=revision+{revision}" if created else "saved=unchanged"
    return RedirectResponse(f"/flows/{flow.namespace}/{flow.id}?{note}", status_code=303)


@router.get("/flows/{namespace}/{flow_id}")
def flow_page(request: Request, namespace: str, flow_id: str, revision: int | None = Query(None, ge=1),
              saved: str | None = None, who: Viewer = Depends(viewer)) -> Response:
    hub = hub_of(request)
    detail = api_flows._detail(hub, namespace, flow_id, revision)
    _, flow = hub.engine.catalog.get(namespace, flow_id, detail.revision)
    states = {k[2]: v for k, v in _trigger_states(request, namespace).items() if k[1] == flow_id}
    page = queries.executions_page(hub.engine.store, queries.Filters(namespace=namespace, flow=flow_id), 15)
    return render(request, who, "flow.html", title=f"{namespace}.{flow_id}", detail=detail, flow=flow,
                  graph=flow_graph(flow, states), executions=page.rows, saved=saved,
                  triggers=[(t, states.get(t.id) or {}) for t in flow.triggers])


@router.get("/flows/{namespace}/{flow_id}/diff")
def flow_diff(request: Request, namespace: str, flow_id: str, from_: int = Query(alias="from", ge=1),
              to: int | None = Query(None, ge=1), who: Viewer = Depends(viewer)) -> Response:
    hub = hub_of(request)
    diff = api_flows.diff_flow(namespace, flow_id, from_, to, hub, None)
    revisions = hub.api_store.revisions(namespace, flow_id)
    return render(request, who, "flow_diff.html", title=f"{namespace}.{flow_id} diff", diff=diff,
                  revisions=revisions, namespace=namespace, flow_id=flow_id)


@router.get("/flows/{namespace}/{flow_id}/edit")
def edit_flow(request: Request, namespace: str, flow_id: str, who: Viewer = Depends(viewer)) -> Response:
    who.need("admin")
    _, source = hub_of(request).engine.store.get_flow_source(namespace, flow_id)
    return render(request, who, "flow_edit.html", title=f"Edit {namespace}.{flow_id}", flow=f"{namespace}.{flow_id}",
                  source=source, errors=[])


async def _switch(request: Request, namespace: str, flow_id: str, who: Viewer, disabled: bool) -> Response:
    await form(request, who)
    who.need("admin")
    hub_of(request).api_store.set_disabled(namespace, flow_id, disabled)
    return RedirectResponse(f"/flows/{namespace}/{flow_id}", status_code=303)


@router.post("/flows/{namespace}/{flow_id}/disable")
async def disable(request: Request, namespace: str, flow_id: str, who: Viewer = Depends(viewer)) -> Response:
    return await _switch(request, namespace, flow_id, who, True)


@router.post("/flows/{namespace}/{flow_id}/enable")
async def enable(request: Request, namespace: str, flow_id: str, who: Viewer = Depends(viewer)) -> Response:
    return await _switch(request, namespace, flow_id, who, False)


# -- the run form ----------------------------------------------------------------------------------


def _typed(spec: Any, raw: str | None) -> Any:
    """A form field as the input's type expects it (empty: not given, so the default applies)."""
    if raw is None or raw == "":
        return None
    kind = spec.type.value
    if kind in ("json", "list"):
        try:
            return json.loads(raw)
        except ValueError:
            return raw if kind == "list" and "," not in raw else [v.strip() for v in raw.split(",")] if kind == "list" else raw
    return raw


@router.get("/flows/{namespace}/{flow_id}/run")
def run_form(request: Request, namespace: str, flow_id: str, who: Viewer = Depends(viewer)) -> Response:
    _, flow = api_flows.runnable(hub_of(request), namespace, flow_id)
    return render(request, who, "flow_run.html", title=f"Run {flow.key}", flow=flow, values={}, problems={})


@router.post("/flows/{namespace}/{flow_id}/run")
async def run_flow(request: Request, namespace: str, flow_id: str, who: Viewer = Depends(viewer)) -> Response:
    """Start an execution from the form (scope ``run``), then show it."""
    fields = await form(request, who)
    who.need("run")
    hub = hub_of(request)
    _, flow = api_flows.runnable(hub, namespace, flow_id)
    inputs: dict[str, Any] = {}
    for spec in flow.inputs:
        raw = fields.get(f"input.{spec.id}")
        if spec.type.value == "bool":
            raw = "true" if raw else ("false" if f"input.{spec.id}.present" in fields else None)
        value = _typed(spec, raw)
        if value is not None:
            inputs[spec.id] = value
    labels = {}
    for pair in fields.get("labels", "").split(","):
        if "=" in pair or ":" in pair:
            key, _, value = pair.replace(":", "=", 1).partition("=")
            labels[key.strip()] = value.strip()
    from hub.api.executions import start_execution

    try:
        ref = await start_execution(namespace, flow_id, StartRequest(inputs=inputs, labels=labels), hub, who.principal)
    except InputError as exc:
        problems = {p.split(":", 1)[0].strip().strip("'"): p for p in exc.problems}
        values = {k[6:]: v for k, v in fields.items() if k.startswith("input.")}
        return render(request, who, "flow_run.html", status=422, title=f"Run {flow.key}", flow=flow,
                      values=values, problems=problems)
    return RedirectResponse(f"/executions/{ref.id}", status_code=303)
