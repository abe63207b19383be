"""What every trigger kind shares: the list of enabled triggers, and firing one execution.

Firing is idempotent on a key the trigger derives from its event (cron time, stream message id,
file, upstream execution): the execution id is a hash of (flow, trigger, key), so the same
event never starts two executions, whichever process or retry delivers it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError

from hub.engine.runner import Engine
from hub.errors import HubError, NotFound
from hub.flow.models import Flow
from hub.triggers.state import TriggerStates

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bound:
    """A trigger together with the flow (latest revision) it belongs to."""

    flow: Flow
    trigger: Any

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.flow.namespace, self.flow.id, self.trigger.id)

    @property
    def name(self) -> str:
        return f"{self.flow.key}/{self.trigger.id}"


def enabled_triggers(engine: Engine, kinds: set[str] | None = None) -> list[Bound]:
    """Triggers of every deployed, enabled flow that are not disabled (in the file or the API)."""
    switched_off = TriggerStates(engine.store).disabled()
    out: list[Bound] = []
    for row in engine.store.list_flows():
        if row["disabled"]:
            continue
        try:
            _, flow = engine.catalog.get(row["namespace"], row["flow_id"], row["revision"])
        except HubError as exc:
            log.warning("flow %s.%s cannot be loaded: %s", row["namespace"], row["flow_id"], exc)
            continue
        if flow.disabled:
            continue
        for trigger in flow.triggers:
            if trigger.disabled or (kinds is not None and trigger.type not in kinds):
                continue
            if (flow.namespace, flow.id, trigger.id) in switched_off:
                continue
            out.append(Bound(flow, trigger))
    return out


def render_field(engine: Engine, bound: Bound, value: Any, field: str, **scope: Any) -> Any:
    """A trigger field rendered the one way every trigger type uses: ``secret()`` and ``now()``
    available, plus ``scope`` (``trigger`` for inputs); raises ExpressionError naming the field."""
    return engine.expr.render(value, {"secret": engine.secrets.get, **scope}, f"triggers.{bound.trigger.id}.{field}")


def execution_id_for(bound: Bound, event_key: str) -> str:
    digest = hashlib.sha256(f"{bound.flow.key}\x1f{bound.trigger.id}\x1f{event_key}".encode()).hexdigest()
    return digest[:32]


async def fire(engine: Engine, bound: Bound, data: dict[str, Any], event_key: str,
               states: TriggerStates | None = None, **state_values: Any) -> tuple[str, bool]:
    """Start the flow for one event; returns ``(execution id, created)``. The execution row is
    committed when this returns (so a stream message may be acknowledged)."""
    execution_id = execution_id_for(bound, event_key)
    states = states or TriggerStates(engine.store)
    states.ensure(*bound.key, bound.trigger.type)
    try:
        engine.store.get_execution(execution_id)
        return execution_id, False
    except NotFound:
        pass
    trigger_data = {"type": bound.trigger.type, "id": bound.trigger.id, **data}
    try:
        inputs = render_field(engine, bound, bound.trigger.inputs, "inputs", trigger=trigger_data)
        await engine.start(bound.flow.key, inputs, trigger=trigger_data, execution_id=execution_id)
    except IntegrityError:
        return execution_id, False  # another process fired the same event first
    except HubError as exc:
        states.failed(*bound.key, str(exc))
        raise
    states.fired(*bound.key, execution_id, **state_values)
    return execution_id, True


async def fire_many(engine: Engine, bound: Bound, events: list[tuple[dict[str, Any], str]],
                    states: TriggerStates | None = None) -> list[tuple[str, bool] | HubError]:
    """Start the flow for several events (``(data, event key)`` each) at once; per event, in order,
    ``(execution id, created)`` or the :class:`HubError` that kept it from starting (its inputs,
    the flow disabled). Every execution row is committed when this returns.

    What :func:`fire` does per event is done once for all of them: one trip to the database
    thread looks for the executions that already exist and the flow's newest revision (and, on
    the first round, makes sure of the trigger's state row), then one group commit of the new
    rows, one update of the trigger's state — so a bus trigger's round of a hundred messages costs
    a handful of round trips instead of hundreds. Any other error (the database is away) propagates.
    """
    if not events:
        return []
    states = states or TriggerStates(engine.store)
    namespace, flow_id, _ = bound.key
    ids = [execution_id_for(bound, key) for _, key in events]

    def look() -> tuple[set[str], tuple[int, Flow, bool] | HubError]:
        """The reads of a round in one trip to the database thread: they are small, and under
        load each trip waits for the thread to be scheduled."""
        states.ensure_once(*bound.key, bound.trigger.type)
        existing = _existing(engine, ids)
        try:
            return existing, engine.catalog.latest(namespace, flow_id)
        except HubError as exc:
            return existing, exc

    existing, latest = await engine.db(look)
    try:
        if isinstance(latest, HubError):
            raise latest
        revision, flow, disabled = latest
        if disabled:
            raise HubError(f"flow {flow.key} is disabled; enable it before starting executions")
    except HubError as exc:
        await engine.db(states.failed, *bound.key, str(exc))
        return [exc if execution_id not in existing else (execution_id, False) for execution_id in ids]

    async def one(data: dict[str, Any], execution_id: str) -> tuple[str, bool] | HubError:
        if execution_id in existing:
            return execution_id, False
        trigger_data = {"type": bound.trigger.type, "id": bound.trigger.id, **data}
        try:
            inputs = render_field(engine, bound, bound.trigger.inputs, "inputs", trigger=trigger_data)
            await engine.start(flow, inputs, trigger=trigger_data, execution_id=execution_id, revision=revision)
        except IntegrityError:
            return execution_id, False  # another process fired the same event first
        except HubError as exc:
            return exc
        return execution_id, True

    results = await asyncio.gather(*(one(data, execution_id) for (data, _), execution_id in zip(events, ids, strict=True)))
    created = [r[0] for r in results if isinstance(r, tuple) and r[1]]
    refused = [r for r in results if isinstance(r, HubError)]
    if created:
        await engine.db(states.fired, *bound.key, created[-1], count=len(created))
    if refused:
        await engine.db(states.failed, *bound.key, str(refused[-1]))
    return results


def _existing(engine: Engine, ids: list[str]) -> set[str]:
    from sqlalchemy import select

    from hub.store.store import EXECUTIONS

    with engine.store.engine.connect() as conn:
        return {row[0] for row in conn.execute(select(EXECUTIONS.c.id).where(EXECUTIONS.c.id.in_(ids)))}
