"""``/v1/triggers``: what starts each flow, its state (last / next fire, errors), switching a
trigger off and on, and backfilling a schedule over a past range."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from hub.api.auth import require
from hub.api.context import Hub, get_hub
from hub.api.errors import ApiError
from hub.api.models import errors
from hub.errors import HubError, NotFound
from hub.flow.models import Flow, ScheduleTrigger

router = APIRouter(tags=["triggers"])


class TriggerInfo(BaseModel):
    namespace: str
    flow_id: str
    trigger_id: str
    type: str
    disabled: bool = Field(description="Off in the flow file or switched off through the API.")
    disabled_in_flow: bool = False
    last_fire_at: float | None = None
    next_fire_at: float | None = Field(None, description="Schedules: the next cron time.")
    last_execution_id: str | None = None
    fire_count: int = 0
    last_error: str | None = None
    error_at: float | None = None


class BackfillRequest(BaseModel):
    start: datetime = Field(alias="from", description="First time of the range (ISO 8601; UTC when no offset).")
    end: datetime = Field(alias="to", description="Last time of the range.")

    model_config = {"populate_by_name": True}


class BackfillItem(BaseModel):
    date: str
    execution_id: str
    created: bool = Field(description="False when that time had already run (it is not started twice).")


def _declared(hub: Hub, namespace: str | None, flow_id: str | None) -> list[tuple[Flow, Any]]:
    out: list[tuple[Flow, Any]] = []
    for row in hub.engine.store.list_flows():
        if (namespace and row["namespace"] != namespace) or (flow_id and row["flow_id"] != flow_id):
            continue
        try:
            _, flow = hub.engine.catalog.get(row["namespace"], row["flow_id"], row["revision"])
        except HubError:
            continue
        out.extend((flow, trigger) for trigger in flow.triggers)
    return out


def _info(flow: Flow, trigger: Any, state: dict[str, Any] | None) -> TriggerInfo:
    from hub.triggers.schedule import next_time

    state = state or {}
    switched_off = bool(state.get("disabled"))
    off = trigger.disabled or switched_off or flow.disabled
    next_fire = None if off else state.get("next_fire_at")
    if next_fire is None and isinstance(trigger, ScheduleTrigger) and not off:
        next_fire = next_time(trigger, time.time())
    return TriggerInfo(
        namespace=flow.namespace, flow_id=flow.id, trigger_id=trigger.id, type=trigger.type,
        disabled=off, disabled_in_flow=trigger.disabled,
        last_fire_at=state.get("last_fire_at"), next_fire_at=next_fire,
        last_execution_id=state.get("last_execution_id"), fire_count=state.get("fire_count") or 0,
        last_error=state.get("last_error"), error_at=state.get("error_at"),
    )


@router.get("/triggers", response_model=list[TriggerInfo], responses=errors(401, 403))
def list_triggers(
    namespace: str | None = Query(None, max_length=200), flow: str | None = Query(None, max_length=200),
    hub: Hub = Depends(get_hub), _: Any = Depends(require("read")),
) -> list[TriggerInfo]:
    """Every trigger of the deployed flows, with its state."""
    from hub.triggers.state import trigger_states

    states = {(s["namespace"], s["flow_id"], s["trigger_id"]): s
              for s in trigger_states(hub.engine.store, namespace, flow)}
    return [_info(f, t, states.get((f.namespace, f.id, t.id))) for f, t in _declared(hub, namespace, flow)]


def _one(hub: Hub, namespace: str, flow_id: str, trigger_id: str) -> tuple[Flow, Any]:
    for flow, trigger in _declared(hub, namespace, flow_id):
        if trigger.id == trigger_id:
            return flow, trigger
    raise NotFound(f"flow {namespace}.{flow_id} has no trigger {trigger_id!r}")


def _switch(hub: Hub, namespace: str, flow_id: str, trigger_id: str, disabled: bool) -> TriggerInfo:
    from hub.triggers.state import set_trigger_disabled

    flow, trigger = _one(hub, namespace, flow_id, trigger_id)
    state = set_trigger_disabled(hub.engine.store, namespace, flow_id, trigger_id, disabled, trigger.type)
    return _info(flow, trigger, state)


@router.post("/flows/{namespace}/{flow_id}/triggers/{trigger_id}/disable", response_model=TriggerInfo,
             responses=errors(401, 403, 404))
def disable_trigger(namespace: str, flow_id: str, trigger_id: str, hub: Hub = Depends(get_hub),
                    _: Any = Depends(require("admin"))) -> TriggerInfo:
    """Switch a trigger off without editing the flow."""
    return _switch(hub, namespace, flow_id, trigger_id, True)


@router.post("/flows/{namespace}/{flow_id}/triggers/{trigger_id}/enable", response_model=TriggerInfo,
             responses=errors(401, 403, 404))
def enable_trigger(namespace: str, flow_id: str, trigger_id: str, hub: Hub = Depends(get_hub),
                   _: Any = Depends(require("admin"))) -> TriggerInfo:
    """Switch a trigger on again (``disabled: true`` in the flow file still wins)."""
    return _switch(hub, namespace, flow_id, trigger_id, False)


@router.post("/flows/{namespace}/{flow_id}/triggers/{trigger_id}/backfill", response_model=list[BackfillItem],
             responses=errors(400, 401, 403, 404, 409, 422))
async def backfill_trigger(namespace: str, flow_id: str, trigger_id: str, body: BackfillRequest,
                           hub: Hub = Depends(get_hub), _: Any = Depends(require("run"))) -> list[BackfillItem]:
    """One execution per cron time of a schedule in ``[from, to]``; times that already ran are
    not started again."""
    from hub.triggers.schedule import BackfillRangeError, backfill

    flow, trigger = _one(hub, namespace, flow_id, trigger_id)
    if not isinstance(trigger, ScheduleTrigger):
        raise HubError(f"trigger {trigger_id} of {flow.key} is a {trigger.type} trigger; only schedules backfill")
    try:
        done = await backfill(hub.engine, flow.key, body.start, body.end, trigger_id)
    except BackfillRangeError as exc:
        raise ApiError(422, str(exc)) from None
    return [BackfillItem(**item) for item in done]
