"""Trace review endpoints. Mount under ``/v1``::

    from hub.api import traces
    app.include_router(traces.router, prefix="/v1")

Every route needs the ``read`` scope (``hub.api.auth.require``). The store is the app's
``app.state.hub.engine.store`` (or ``app.state.store`` / ``app.state.engine.store`` in a bare app);
override the :func:`get_store` dependency to supply it another way.

- ``GET /executions/{id}/trace``: the span tree with timings, attributes and events, plus the
  token and cost summary (``usage``) summed from the LLM spans.
- ``GET /executions/{id}/usage``: only the summary.
- ``GET /traces``: search by flow, state, time range, minimum duration, errors only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from hub.errors import NotFound
from hub.store.store import Store
from hub.telemetry import review, spanstore

try:
    from hub.api.auth import require

    _guards = [Depends(require("read"))]
except ImportError:  # a bare app without the service's auth (tests of this router alone)
    _guards = []

from hub.api.errors import parse_time
from hub.api.paging import CURSOR_HELP, start_after
from hub.core import keyset

router = APIRouter(tags=["traces"], dependencies=_guards)


def get_store(request: Request) -> Store:
    state = request.app.state
    hub = getattr(state, "hub", None)
    store = hub.engine.store if hub is not None else getattr(state, "store", None)
    if store is None and getattr(state, "engine", None) is not None:
        store = state.engine.store
    if store is None:
        raise HTTPException(500, "the app has no store (set app.state.store or app.state.engine)")
    return store  # type: ignore[no-any-return]


def _execution_trace(store: Store, execution_id: str, wait: float = 0.0) -> dict[str, Any]:
    try:
        return review.execution_trace(store, execution_id, wait=wait)
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None


@router.get("/executions/{execution_id}/trace")
def execution_trace(
    execution_id: str,
    wait: float = Query(0, ge=0, le=10, description="Seconds past its end to wait for the spans of an execution "
                                                    "that just ended (`complete: false` while they are missing)."),
    store: Store = Depends(get_store),
) -> dict[str, Any]:
    """The execution's trace as a span tree (404 for an unknown execution), with the online
    scores of its LLM calls (``scores``: eval, call record id, step path, score, assertions)."""
    from hub.evals.online_store import OnlineStore

    found = _execution_trace(store, execution_id, wait)
    found["scores"] = OnlineStore(store.engine).scores(execution_id=found["execution_id"], limit=500)
    return found


@router.get("/executions/{execution_id}/usage")
def execution_usage(execution_id: str, store: Store = Depends(get_store)) -> dict[str, Any]:
    """Tokens and cost of the execution's model calls, overall and by model."""
    found = _execution_trace(store, execution_id)
    return {"execution_id": found["execution_id"], "trace_id": found["trace_id"], **found["usage"]}




@router.get("/traces")
def search_traces(
    flow: str | None = Query(None, description="namespace.flow_id or flow_id"),
    state: str | None = Query(None, description="Execution state, e.g. FAILED"),
    since: str | None = Query(None, description="Executions created at or after (epoch seconds or ISO 8601)"),
    until: str | None = Query(None, description="Executions created at or before"),
    min_duration_ms: float | None = Query(None, ge=0),
    errors: bool = Query(False, description="Only traces with a span in ERROR"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200, description=CURSOR_HELP),
    store: Store = Depends(get_store),
) -> dict[str, Any]:
    """Executions with a stored trace, newest first; ``next``: the cursor of the next page."""
    found, following = spanstore.trace_page(
        store.engine, flow=flow, state=state, since=parse_time(since, "since"), until=parse_time(until, "until"),
        min_duration_ms=min_duration_ms, errors_only=errors, limit=limit,
        after=start_after(cursor, (float | int, str)),
    )
    return {"traces": found, "count": len(found), "next": keyset.encode(following) if following else None}
