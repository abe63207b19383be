"""What every trigger kind shares: the list of enabled triggers, and firing one execution.

Firing is idempotent on a key the trigger derives from its event (cron time, stream message id,
file, upstream execution): the execution id is a hash of (flow, trigger, key), so the same
event never starts two executions, whichever process or retry delivers it.
"""

from __future__ import annotations

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
        inputs = engine.expr.render(bound.trigger.inputs, {"trigger": trigger_data}, f"triggers.{bound.trigger.id}.inputs")
        await engine.start(bound.flow.key, inputs, trigger=trigger_data, execution_id=execution_id)
    except IntegrityError:
        return execution_id, False  # another process fired the same event first
    except HubError as exc:
        states.failed(*bound.key, str(exc))
        raise
    states.fired(*bound.key, execution_id, **state_values)
    return execution_id, True
