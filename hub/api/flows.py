"""``/v1/flows``: create or update from YAML, validate, list, get with revisions, diff, disable, delete."""

from __future__ import annotations

import difflib
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from hub.api import guard
from hub.api.auth import require
from hub.api.context import Hub, get_hub
from hub.api.errors import ApiError
from hub.api.models import (
    MAX_INT,
    DeployResult,
    FlowDetail,
    FlowDiff,
    FlowSummary,
    Revision,
    ValidationResult,
    errors,
)
from hub.api.paging import CURSOR_HELP, NEXT_HEADERS, link_next, next_cursor, start_after
from hub.errors import FlowError, Location, NotFound
from hub.flow.models import Flow

router = APIRouter(prefix="/flows", tags=["flows"])

YAML_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-yaml": {
                "schema": {"type": "string", "minLength": 1},
                "example": "id: hello\nnamespace: demo\ntasks:\n  - {id: hi, type: log, message: hi}\n",
            }
        },
    }
}


class DeployFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(examples=["flows/sales/lead_enrichment.yaml"])
    source: str


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flows: list[DeployFile] = Field(max_length=1000)


async def _yaml_text(request: Request, hub: Hub) -> str:
    body = await guard.read_body(request, hub.settings.max_flow_body, "the flow", "HUB_API_MAX_FLOW_BODY")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the flow must be UTF-8 text (YAML)") from None
    if not text.strip():
        raise ApiError(400, "send the flow's YAML as the request body (Content-Type: application/x-yaml)")
    return text


def _parse(hub: Hub, text: str, file: str | None) -> Flow:
    """Parse and check a flow (CPU work: call it from a thread, see :func:`_parse_off_loop`)."""
    return hub.engine.catalog.loader.load_text(text, file)


async def _parse_off_loop(hub: Hub, text: str, file: str | None) -> Flow:
    """:func:`_parse` in a worker thread, so that a large flow does not hold up other requests."""
    return await run_in_threadpool(_parse, hub, text, file)


def _detail(hub: Hub, namespace: str, flow_id: str, revision: int | None = None,
            created: bool | None = None) -> FlowDetail:
    state = hub.api_store.flow_state(namespace, flow_id)
    rev, flow = hub.engine.catalog.get(namespace, flow_id, revision)
    revisions = hub.api_store.revisions(namespace, flow_id)
    row = next((r for r in revisions if r["revision"] == rev), None)
    if row is None:
        raise NotFound(f"flow {namespace}.{flow_id} has no revision {rev}")
    return FlowDetail(
        namespace=namespace,
        id=flow_id,
        revision=rev,
        description=flow.description,
        disabled=bool(state["disabled"]) or flow.disabled,
        updated_at=float(state["created_at"]),
        source=flow.source,
        inputs=[spec.model_dump(mode="json", exclude_none=True) for spec in flow.inputs],
        triggers=[_trigger(t) for t in flow.triggers],
        revisions=[Revision(**r) for r in revisions],
        created=created,
    )


def _trigger(trigger: Any) -> dict[str, Any]:
    data: dict[str, Any] = trigger.model_dump(mode="json", exclude_none=True)
    for secret in ("secret", "signing_secret"):
        if secret in data:
            data[secret] = "******"
    return data


def save(hub: Hub, flow: Flow) -> tuple[int, bool]:
    """Store a parsed flow (a flow disabled through the API stays disabled on a new revision)."""
    revision, created = hub.engine.store.save_flow(flow.namespace, flow.id, flow.source, flow.content_hash)
    hub.api_store.forget_flows()
    return revision, created


@router.get("", response_model=list[FlowSummary], responses=errors(401, 403))
def list_flows(hub: Hub = Depends(get_hub), _: Any = Depends(require("read"))) -> list[FlowSummary]:
    """Every flow (newest revision), by namespace and id."""
    out = []
    for row in hub.engine.store.list_flows():
        try:
            _, flow = hub.engine.catalog.get(row["namespace"], row["flow_id"], row["revision"])
            description, disabled = flow.description, flow.disabled
        except FlowError:
            description, disabled = None, False
        out.append(FlowSummary(
            namespace=row["namespace"], id=row["flow_id"], revision=row["revision"], description=description,
            disabled=bool(row["disabled"]) or disabled, updated_at=row["created_at"],
        ))
    return out


@router.post(
    "", response_model=FlowDetail, status_code=201, openapi_extra=YAML_BODY, responses=errors(400, 401, 403, 422),
)
async def create_flow(
    request: Request, response: Response, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))
) -> FlowDetail:
    """Create or update a flow from its YAML. 201 with a new revision, 200 when nothing changed."""
    flow = await _parse_off_loop(hub, await _yaml_text(request, hub), None)
    revision, created = save(hub, flow)
    if not created:
        response.status_code = 200
    return _detail(hub, flow.namespace, flow.id, revision, created)


@router.put(
    "/{namespace}/{flow_id}", response_model=FlowDetail, openapi_extra=YAML_BODY,
    responses=errors(400, 401, 403, 422),
)
async def put_flow(
    namespace: str, flow_id: str, request: Request, hub: Hub = Depends(get_hub),
    _: Any = Depends(require("admin")),
) -> FlowDetail:
    """Create or update the flow at this address; the YAML's ``namespace`` and ``id`` must match it."""
    flow = await _parse_off_loop(hub, await _yaml_text(request, hub), f"{namespace}.{flow_id}")
    if (flow.namespace, flow.id) != (namespace, flow_id):
        raise FlowError([Location(("id",), f"the flow is {flow.key}, but was sent to {namespace}.{flow_id}")])
    revision, created = save(hub, flow)
    return _detail(hub, namespace, flow_id, revision, created)


@router.post("/validate", response_model=ValidationResult, openapi_extra=YAML_BODY, responses=errors(400, 401, 403))
async def validate_flow(
    request: Request, hub: Hub = Depends(get_hub), _: Any = Depends(require("read"))
) -> ValidationResult:
    """Check a flow without saving it: every error, each with file, line, column and key path."""
    try:
        flow = await _parse_off_loop(hub, await _yaml_text(request, hub), request.query_params.get("file"))
    except FlowError as exc:
        return ValidationResult(valid=False, errors=[loc.to_dict() for loc in exc.locations])  # type: ignore[misc]
    return ValidationResult(valid=True, flow=flow.key)


@router.post("/deploy", response_model=DeployResult, responses=errors(400, 401, 403, 422))
def deploy_flows(body: DeployRequest, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))) -> DeployResult:
    """Push a folder of flows at once (``hub deploy DIR``): all are checked first, nothing is saved
    unless every one is valid, so a git repository can be the source of truth. (A plain ``def``:
    FastAPI runs it in a worker thread, off the event loop.)"""
    parsed: list[Flow] = []
    problems: list[Location] = []
    for item in body.flows:
        if len(item.source.encode("utf-8", "surrogatepass")) > hub.settings.max_flow_body:
            raise guard.too_large(hub.settings.max_flow_body, item.file, "HUB_API_MAX_FLOW_BODY")
    for item in body.flows:
        try:
            parsed.append(_parse(hub, item.source, item.file))
        except FlowError as exc:
            problems.extend(exc.locations)
    seen: dict[str, str] = {}
    for flow, item in zip(parsed, body.flows, strict=False):
        if flow.key in seen:
            problems.append(Location(("id",), f"{flow.key} is also defined in {seen[flow.key]}", item.file))
        seen[flow.key] = item.file
    if problems:
        raise FlowError(problems, f"{len(body.flows)} flow file(s)")
    out = []
    for flow in parsed:
        revision, created = save(hub, flow)
        out.append(_detail(hub, flow.namespace, flow.id, revision, created))
    return DeployResult(flows=out)


@router.get("/{namespace}/{flow_id}", response_model=FlowDetail, responses=errors(401, 403, 404))
def get_flow(
    namespace: str, flow_id: str, revision: int | None = Query(None, ge=1, le=MAX_INT),
    hub: Hub = Depends(get_hub), _: Any = Depends(require("read")),
) -> FlowDetail:
    """A flow at its newest (or a given) revision, with the list of its revisions."""
    return _detail(hub, namespace, flow_id, revision)


@router.get("/{namespace}/{flow_id}/revisions", response_model=list[Revision], responses={**errors(401, 403, 404), 200: {"headers": NEXT_HEADERS}})
def list_revisions(
    namespace: str, flow_id: str, request: Request, response: Response,
    limit: int = Query(1000, ge=1, le=1000), cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    hub: Hub = Depends(get_hub), _: Any = Depends(require("read")),
) -> list[Revision]:
    """A flow's revisions, oldest first; the next page in ``Link`` / ``Hub-Next-Cursor``."""
    hub.api_store.flow_state(namespace, flow_id)
    rows = hub.api_store.revisions(namespace, flow_id, limit + 1, start_after(cursor, (int,)))
    link_next(request, response, next_cursor(rows, limit, lambda r: [r["revision"]]))
    return [Revision(**r) for r in rows]


@router.get("/{namespace}/{flow_id}/diff", response_model=FlowDiff, responses=errors(401, 403, 404))
def diff_flow(
    namespace: str, flow_id: str,
    from_revision: int = Query(alias="from", ge=1, le=MAX_INT),
    to_revision: int | None = Query(None, alias="to", ge=1, le=MAX_INT),
    hub: Hub = Depends(get_hub), _: Any = Depends(require("read")),
) -> FlowDiff:
    """Unified diff between two revisions (``to`` defaults to the newest)."""
    hub.api_store.flow_state(namespace, flow_id)
    old_rev, old = hub.engine.store.get_flow_source(namespace, flow_id, from_revision)
    new_rev, new = hub.engine.store.get_flow_source(namespace, flow_id, to_revision)
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"{namespace}.{flow_id}@{old_rev}", tofile=f"{namespace}.{flow_id}@{new_rev}",
    )
    return FlowDiff(namespace=namespace, id=flow_id, from_revision=old_rev, to_revision=new_rev, diff="".join(lines))


@router.post("/{namespace}/{flow_id}/disable", response_model=FlowDetail, responses=errors(401, 403, 404))
def disable_flow(
    namespace: str, flow_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))
) -> FlowDetail:
    """No new executions (API, webhooks, triggers) until enabled again; running ones go on."""
    hub.api_store.set_disabled(namespace, flow_id, True)
    return _detail(hub, namespace, flow_id)


@router.post("/{namespace}/{flow_id}/enable", response_model=FlowDetail, responses=errors(401, 403, 404))
def enable_flow(
    namespace: str, flow_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))
) -> FlowDetail:
    hub.api_store.set_disabled(namespace, flow_id, False)
    return _detail(hub, namespace, flow_id)


@router.delete("/{namespace}/{flow_id}", status_code=204, responses=errors(401, 403, 404))
def delete_flow(
    namespace: str, flow_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))
) -> Response:
    """Delete a flow (its revisions stay for the executions that ran them)."""
    hub.api_store.delete_flow(namespace, flow_id)
    return Response(status_code=204)


def runnable(hub: Hub, namespace: str, flow_id: str) -> tuple[int, Flow]:
    """The newest revision of a flow that may start executions (exists, not disabled)."""
    state = hub.api_store.flow_head(namespace, flow_id)
    revision, flow = hub.engine.catalog.get(namespace, flow_id, state["revision"])
    if state["disabled"] or flow.disabled:
        raise ApiError(409, f"flow {namespace}.{flow_id} is disabled; enable it with "
                       f"POST /v1/flows/{namespace}/{flow_id}/enable", type="FlowDisabled")
    return revision, flow
