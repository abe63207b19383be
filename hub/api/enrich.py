"""``POST /v1/enrich/{namespace}/{flow}``: a flow as a synchronous API.

The execution runs in this server process (the low-latency path, no queue hop) and is a normal,
persisted execution: 200 with its outputs when it ends within the request's timeout, else 202
with its id (it goes on running). A flow opts into a response cache with the label
``enrich_cache_ttl`` (a duration, e.g. ``"5m"``): the same inputs within the TTL get the stored
outputs. Calls are rate limited per API key (``HUB_API_RATE_LIMIT``), 429 with Retry-After.
Both are shared by every API replica through Redis when ``HUB_REDIS_URL`` is set (see
:mod:`hub.api.limits`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse

from hub.api.auth import Principal, require
from hub.api.context import Hub, get_hub
from hub.api.errors import (
    ApiError,
    error_body,
    error_response,
    hub_error_details,
    hub_error_message,
    hub_error_type,
)
from hub.api.flows import runnable
from hub.api.models import (
    BatchItem,
    BatchRequest,
    BatchResult,
    EnrichPending,
    EnrichResult,
    ErrorBody,
    errors,
)
from hub.engine.inputs import check_inputs
from hub.engine.states import State
from hub.errors import HubError
from hub.flow.durations import parse_duration
from hub.flow.models import Flow

log = logging.getLogger(__name__)
router = APIRouter(prefix="/enrich", tags=["enrichment"])

CACHE_LABEL = "enrich_cache_ttl"
EXECUTION_HEADER = "X-Hub-Execution-Id"


def cache_ttl(flow: Flow) -> float:
    value = flow.labels.get(CACHE_LABEL)
    if not value:
        return 0.0
    try:
        return parse_duration(value)
    except ValueError:
        log.warning("flow %s: label %s=%r is not a duration; no cache", flow.key, CACHE_LABEL, value)
        return 0.0


async def _limit(hub: Hub, principal: Principal) -> None:
    wait = await hub.limiter.check(principal.name)
    if wait > 0:
        raise ApiError(
            429, f"rate limit of {hub.limiter.rate:g} requests/s for key {principal.name} reached; retry in {wait:.2f}s",
            headers={"Retry-After": str(max(1, math.ceil(wait)))},
        )


class Outcome:
    """One enrichment's result: an HTTP status and a body (shared by the single and batch calls)."""

    def __init__(self, status: int, execution_id: str | None, state: str | None, outputs: Any = None,
                 cached: bool = False, error: dict[str, Any] | None = None):
        self.status = status
        self.execution_id = execution_id
        self.state = state
        self.outputs = outputs
        self.cached = cached
        self.error = error


async def enrich_one(
    hub: Hub, revision: int, flow: Flow, inputs: dict[str, Any], deadline: float, use_cache: bool = True
) -> Outcome:
    """Run one item to its end or to ``deadline`` (monotonic). Input errors raise."""
    checked = check_inputs(flow, inputs)
    ttl = cache_ttl(flow) if use_cache else 0.0
    key = ""
    if ttl > 0:
        digest = hashlib.sha256(json.dumps(checked, sort_keys=True, default=str).encode()).hexdigest()
        key = f"{flow.key}@{revision}:{digest}"
        hit = await hub.cache.get(key)
        if isinstance(hit, dict) and {"id", "state", "outputs"} <= hit.keys():
            return Outcome(200, hit["id"], hit["state"], hit["outputs"], cached=True)
    execution_id = await hub.engine.start(
        flow, checked, enqueue=False, claim=True, revision=revision, trigger={"type": "enrich"}
    )
    task = hub.spawn(hub.engine.run(execution_id))
    done, _ = await asyncio.wait({task}, timeout=max(0.0, deadline - time.monotonic()))
    if not done:
        return Outcome(202, execution_id, hub.engine.store.get_execution(execution_id)["state"])
    row = task.result()
    state = row["state"]
    if state in (State.SUCCESS, State.WARNING):
        if key:
            await hub.cache.put(key, {"id": execution_id, "state": state, "outputs": row["outputs"]}, ttl)
        return Outcome(200, execution_id, state, row["outputs"])
    if state in (State.FAILED, State.KILLED, State.CANCELLED):
        err = row["error"] or {}
        where = f" at step {err['path']}" if err.get("path") else ""
        detail = {"path": err.get("path"), "message": f"{err.get('type', 'Error')}: {err.get('message', state)}"}
        return Outcome(422, execution_id, state, error=error_body(
            "ExecutionFailed", f"execution {execution_id} of {flow.key} ended {state}{where}", [detail])["error"])
    return Outcome(202, execution_id, state)


def _deadline(hub: Hub, timeout: float | None) -> float:
    limit = hub.settings.enrich_timeout
    return time.monotonic() + (min(timeout, limit) if timeout else limit)


@router.post(
    "/{namespace}/{flow_id}",
    response_model=EnrichResult,
    responses={202: {"model": EnrichPending, "description": "Still running past the timeout (or paused)"},
               **errors(401, 403, 404, 409, 422, 429)},
)
async def enrich(
    request: Request, namespace: str, flow_id: str,
    inputs: dict[str, Any] = Body(default_factory=dict, examples=[{"email": "ana@example.com"}]),
    timeout: float | None = Query(None, gt=0, le=3600, description="Seconds to wait (capped by the server)."),
    cache: bool = Query(True, description="Use the flow's response cache (label enrich_cache_ttl)."),
    hub: Hub = Depends(get_hub), principal: Principal = Depends(require("run", per_namespace=True)),
) -> JSONResponse:
    """Run the flow with ``inputs`` (the body) and answer its outputs."""
    return await answer(request, hub, principal, namespace, flow_id, inputs, timeout, cache)


async def answer(
    request: Request, hub: Hub, principal: Principal, namespace: str, flow_id: str, inputs: dict[str, Any],
    timeout: float | None, cache: bool,
) -> JSONResponse:
    """:func:`enrich` once its parameters are read and its caller authorized (shared with the
    hot path of :mod:`hub.api.enrich_route`)."""
    await _limit(hub, principal)
    revision, flow = runnable(hub, namespace, flow_id)
    out = await enrich_one(hub, revision, flow, inputs, _deadline(hub, timeout), cache)
    headers = {EXECUTION_HEADER: out.execution_id} if out.execution_id else None
    if out.status == 200:
        body = EnrichResult(id=out.execution_id or "", state=out.state or "", outputs=out.outputs, cached=out.cached)
        return JSONResponse(body.model_dump(mode="json"), headers=headers)
    if out.status == 202:
        pending = EnrichPending(id=out.execution_id or "", state=out.state or "")
        return JSONResponse(pending.model_dump(mode="json"), status_code=202, headers=headers)
    error = out.error or {}
    return error_response(
        out.status, error.get("type", "Error"), error.get("message", ""), error.get("details"), headers,
        instance=request.url.path, execution_id=out.execution_id, state=out.state,
    )


@router.post(
    "/{namespace}/{flow_id}/batch", response_model=BatchResult, responses=errors(401, 403, 404, 409, 422, 429),
)
async def enrich_batch(
    namespace: str, flow_id: str, body: BatchRequest,
    timeout: float | None = Query(None, gt=0, le=3600, description="Seconds to wait for the whole batch."),
    cache: bool = Query(True),
    hub: Hub = Depends(get_hub), principal: Principal = Depends(require("run", per_namespace=True)),
) -> BatchResult:
    """Run the flow once per item, up to ``HUB_API_ENRICH_BATCH_CONCURRENCY`` at once; results come
    in the items' order, each with its outputs or its own error."""
    await _limit(hub, principal)
    if len(body.items) > hub.settings.enrich_batch_max:
        raise ApiError(422, f"a batch holds at most {hub.settings.enrich_batch_max} items; got {len(body.items)}",
                       details=[{"path": "body.items", "message": "too many items"}])
    revision, flow = runnable(hub, namespace, flow_id)
    deadline = _deadline(hub, timeout)
    gate = asyncio.Semaphore(hub.settings.enrich_batch_concurrency)

    async def one(index: int, inputs: dict[str, Any]) -> BatchItem:
        async with gate:
            try:
                out = await enrich_one(hub, revision, flow, inputs, deadline, cache)
            except HubError as exc:
                return BatchItem(index=index, error=ErrorBody(
                    type=hub_error_type(exc), message=hub_error_message(exc),
                    details=hub_error_details(exc),  # type: ignore[arg-type]
                ))
            error = ErrorBody(**out.error) if out.error else None
            return BatchItem(index=index, id=out.execution_id, state=out.state, outputs=out.outputs,
                             cached=out.cached, error=error)

    items = await asyncio.gather(*(one(i, item) for i, item in enumerate(body.items)))
    return BatchResult(items=list(items))


__all__ = ["router", "enrich_one", "answer"]
