"""``flow`` triggers: start a flow when another one reaches given states, if a condition holds.

A listener on the engine's events, attached in every process that runs executions (server and
workers). The new execution's id derives from the upstream execution's, so the same ending
never starts it twice. The condition sees ``trigger.outputs``, ``trigger.state``,
``trigger.inputs`` (of the upstream execution), e.g. ``"{{ trigger.outputs.score > 0.5 }}"``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from hub.engine.fanout import is_iteration
from hub.engine.runner import Engine
from hub.engine.states import TERMINAL
from hub.errors import HubError
from hub.triggers.base import Bound, enabled_triggers, fire
from hub.triggers.state import TriggerStates

log = logging.getLogger(__name__)

INDEX_TTL = 5.0  # seconds a process keeps its list of flow triggers before reading it again


class FlowTriggers:
    """Attach with :meth:`attach`; fires from the engine's ``execution`` events."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.states = TriggerStates(engine.store)
        self.pending: set[asyncio.Task[Any]] = set()
        self._index: list[Bound] = []
        self._read_at = 0.0

    def attach(self) -> FlowTriggers:
        self.engine.listeners.append(self)
        return self

    def detach(self) -> None:
        if self in self.engine.listeners:
            self.engine.listeners.remove(self)

    def index(self) -> list[Bound]:
        if time.monotonic() - self._read_at > INDEX_TTL:
            self._index = enabled_triggers(self.engine, {"flow"})
            self._read_at = time.monotonic()
        return self._index

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") != "execution" or event.get("state") not in TERMINAL:
            return
        if not self.index():
            return
        task = asyncio.get_running_loop().create_task(self.handle(event["execution_id"]))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def handle(self, execution_id: str) -> list[str]:
        upstream = self.engine.store.get_execution(execution_id)
        if is_iteration(upstream):
            return []
        key = f"{upstream['namespace']}.{upstream['flow_id']}"
        started = []
        for bound in self.index():
            trigger = bound.trigger
            namespace, flow_id = self.engine.catalog.resolve_ref(trigger.flow, bound.flow.namespace)
            if f"{namespace}.{flow_id}" != key or upstream["state"] not in trigger.states:
                continue
            data = {"execution_id": upstream["id"], "namespace": upstream["namespace"],
                    "flow_id": upstream["flow_id"], "state": upstream["state"],
                    "outputs": upstream["outputs"] or {}, "inputs": upstream["inputs"] or {}}
            try:
                if trigger.condition is not None and not self.engine.expr.condition(
                    trigger.condition, {"trigger": data}, f"triggers.{trigger.id}.condition"
                ):
                    continue
                execution_id, _ = await fire(self.engine, bound, data, f"flow:{upstream['id']}", self.states)
                started.append(execution_id)
            except HubError as exc:
                log.warning("flow trigger %s: %s", bound.name, exc)
                self.states.failed(*bound.key, str(exc))
        return started

    async def drain(self) -> None:
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
