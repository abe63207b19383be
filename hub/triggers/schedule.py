"""``schedule`` triggers: cron in a timezone, missed times caught up once, all or none, backfill.

Each schedule keeps a cursor (the last cron time handled) in its trigger state. A tick fires
the cron times between the cursor and now; times older than :data:`MISFIRE_GRACE` count as
missed (the scheduler was down) and follow ``catchup``: ``all`` fires each, ``once`` fires only
the newest, ``none`` skips them. A schedule seen for the first time starts from now.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from hub.engine.runner import Engine
from hub.errors import HubError
from hub.flow.models import ScheduleTrigger
from hub.triggers.base import Bound, enabled_triggers, fire
from hub.triggers.state import TriggerStates

log = logging.getLogger(__name__)

MISFIRE_GRACE = 60.0  # seconds: a cron time older than this at the tick is a missed one
MAX_TIMES = 1000  # cron times handled at most per tick / per backfill


class BackfillRangeError(HubError):
    """A backfill range that ends before it starts, or holds more cron times than allowed."""


def cron_times(trigger: ScheduleTrigger, after: float, until: float, limit: int = MAX_TIMES) -> Iterator[float]:
    """Cron times of ``trigger`` in ``(after, until]``, as epoch seconds, in its timezone."""
    tz = ZoneInfo(trigger.timezone)
    it = croniter(trigger.cron, datetime.fromtimestamp(after, tz))
    for _ in range(limit):
        moment = it.get_next(datetime).timestamp()
        if moment > until:
            return
        yield moment


def next_time(trigger: ScheduleTrigger, after: float) -> float:
    tz = ZoneInfo(trigger.timezone)
    return float(croniter(trigger.cron, datetime.fromtimestamp(after, tz)).get_next(datetime).timestamp())


def _iso(ts: float, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).isoformat()


async def tick(engine: Engine, now: float, states: TriggerStates | None = None,
               schedules: list[Bound] | None = None) -> list[str]:
    """Fire every schedule that is due at ``now``; returns the ids of executions created.
    ``schedules``: the enabled schedule triggers, when the caller has just listed them."""
    states = states or TriggerStates(engine.store)
    created: list[str] = []
    for bound in enabled_triggers(engine, {"schedule"}) if schedules is None else schedules:
        earlier = (states.get(*bound.key) or {}).get("last_error")  # (fire() records its own failure)
        try:
            created.extend(await _tick_one(engine, bound, now, states))
        except Exception as exc:
            message = str(exc) if isinstance(exc, HubError) else f"{type(exc).__name__}: {exc}"
            if message != earlier:  # reported once (and in GET /v1/triggers), not at every tick
                if isinstance(exc, HubError):
                    log.error("schedule %s cannot start its flow: %s", bound.name, message)
                else:
                    log.exception("schedule %s failed", bound.name)
            states.failed(*bound.key, message)
    return created


async def _tick_one(engine: Engine, bound: Bound, now: float, states: TriggerStates) -> list[str]:
    trigger: ScheduleTrigger = bound.trigger
    state = states.ensure(*bound.key, "schedule")
    cursor = (state["cursor"] or {}).get("last")
    if cursor is None or (state["cursor"] or {}).get("cron") != trigger.cron + "@" + trigger.timezone:
        if cursor is None:
            cursor = now  # first sight: nothing in the past is "missed"
        states.update(*bound.key, cursor={"last": cursor, "cron": trigger.cron + "@" + trigger.timezone},
                      next_fire_at=next_time(trigger, cursor))
    due = list(cron_times(trigger, cursor, now))
    if not due:
        if state["next_fire_at"] is None:
            states.update(*bound.key, next_fire_at=next_time(trigger, cursor))
        return []
    on_time = [t for t in due if now - t <= MISFIRE_GRACE]
    missed = [t for t in due if now - t > MISFIRE_GRACE]
    if trigger.catchup == "all":
        chosen = due
    elif trigger.catchup == "once":
        chosen = on_time or missed[-1:]
        if on_time and missed:
            log.info("schedule %s: %d missed time(s) folded into the current one", bound.name, len(missed))
    else:
        chosen = on_time
        if missed:
            log.info("schedule %s: skipping %d missed time(s) (catchup: none)", bound.name, len(missed))
    created = []
    for moment in chosen:
        data = {"date": _iso(moment, trigger.timezone), "scheduled_at": moment, "late": now - moment > MISFIRE_GRACE}
        if trigger.catchup == "once" and missed and moment == chosen[-1]:
            data["missed"] = len(missed) + len(on_time) - 1
        try:
            execution_id, new = await fire(engine, bound, data, f"schedule:{moment:.3f}", states)
        except HubError:
            # this time cannot start (its inputs do not render, the flow is disabled): it is
            # skipped, so the schedule tries again at its next time, not at every tick
            states.update(*bound.key, cursor={"last": moment, "cron": trigger.cron + "@" + trigger.timezone},
                          next_fire_at=next_time(trigger, moment))
            raise
        if new:
            created.append(execution_id)
    states.update(*bound.key, cursor={"last": due[-1], "cron": trigger.cron + "@" + trigger.timezone},
                  next_fire_at=next_time(trigger, due[-1]))
    return created


def schedule_of(engine: Engine, flow_ref: str, trigger_id: str | None = None) -> Bound:
    """The schedule trigger of a deployed flow (``trigger_id`` needed when it has several)."""
    namespace, flow_id = engine.catalog.resolve_ref(flow_ref, "default")
    _, flow = engine.catalog.get(namespace, flow_id)
    schedules = [t for t in flow.triggers if t.type == "schedule"]
    if trigger_id is not None:
        schedules = [t for t in schedules if t.id == trigger_id]
    if not schedules:
        which = f" with id {trigger_id!r}" if trigger_id else ""
        raise HubError(f"flow {flow.key} has no schedule trigger{which}")
    if len(schedules) > 1:
        raise HubError(f"flow {flow.key} has several schedules ({', '.join(t.id for t in schedules)}); name one")
    return Bound(flow, schedules[0])


async def backfill(engine: Engine, flow_ref: str, start: datetime, end: datetime,
                   trigger_id: str | None = None, limit: int = MAX_TIMES) -> list[dict[str, Any]]:
    """Start one execution per cron time in ``[start, end]``; a time that already ran (by the
    schedule or an earlier backfill) is not started again. Returns ``{date, execution_id, created}``."""
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if end < start:
        raise BackfillRangeError("backfill: the end of the range is before its start")
    bound = schedule_of(engine, flow_ref, trigger_id)
    trigger: ScheduleTrigger = bound.trigger
    times = list(cron_times(trigger, start.timestamp() - 0.001, end.timestamp(), limit + 1))
    if len(times) > limit:
        raise BackfillRangeError(f"backfill of {bound.name} would start more than {limit} executions; narrow the range")
    out = []
    for moment in times:
        data = {"date": _iso(moment, trigger.timezone), "scheduled_at": moment, "backfill": True}
        execution_id, new = await fire(engine, bound, data, f"schedule:{moment:.3f}")
        out.append({"date": data["date"], "execution_id": execution_id, "created": new})
    return out
