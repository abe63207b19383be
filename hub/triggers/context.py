"""What a running trigger is given: :class:`TriggerContext`, and the protocol of trigger types.

A trigger type is a class declared by a plugin (``hub.trigger_type(name, "module:Class")``)::

    class Tick:
        type = "acme.tick"
        Config = TickConfig            # pydantic model of its YAML fields (a TriggerBase)
        leader_only = True             # run by the leader only (else by every serving process)

        async def run(self, ctx: TriggerContext) -> None:
            while not ctx.stopping.is_set():
                await ctx.fire({"at": time.time()}, key=str(int(time.time())))
                await asyncio.sleep(ctx.config.every)

``run`` consumes events until it is cancelled; :meth:`TriggerContext.fire` starts one execution
per event, idempotently on the event's key, and returns once the execution row is committed —
acknowledge or commit the message after that. A type without ``run`` (webhook, schedule, file,
flow) is served by the hub itself.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from pydantic import BaseModel

from hub.engine.runner import Engine
from hub.errors import HubError
from hub.triggers.base import Bound, fire, fire_many
from hub.triggers.state import TriggerStates


@runtime_checkable
class TriggerKind(Protocol):
    """A trigger type that consumes events itself."""

    type: ClassVar[str]
    Config: ClassVar[builtins.type[BaseModel]]
    leader_only: ClassVar[bool]

    async def run(self, ctx: TriggerContext) -> None: ...


@dataclass
class TriggerContext:
    """One enabled trigger of one deployed flow, as its consumer sees it."""

    engine: Engine
    bound: Bound
    states: TriggerStates
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    options: dict[str, Any] = field(default_factory=dict)
    """Tuning the service passes to every consumer (poll and claim intervals in tests)."""
    log: logging.Logger | logging.LoggerAdapter[Any] = field(default_factory=lambda: logging.getLogger("hub.trigger"))

    @property
    def config(self) -> Any:
        """The trigger's validated YAML fields (its type's ``Config``)."""
        return self.bound.trigger

    @property
    def flow(self) -> Any:
        return self.bound.flow

    @property
    def settings(self) -> Any:
        return self.engine.settings

    @property
    def name(self) -> str:
        """``namespace.flow/trigger``, for logs."""
        return self.bound.name

    async def fire(self, data: dict[str, Any], key: str, **state_values: Any) -> tuple[str, bool]:
        """Start the flow for one event: ``(execution id, created)``. The same ``key`` never
        starts two executions. Raises :class:`hub.errors.HubError` when the event cannot start a
        run (its inputs are invalid, the flow is disabled): dead-letter it."""
        return await fire(self.engine, self.bound, data, key, self.states, **state_values)

    async def fire_many(self, events: list[tuple[dict[str, Any], str]]) -> list[tuple[str, bool] | HubError]:
        """Start the flow for several events (``(data, key)`` each) in one round: per event, in
        order, ``(execution id, created)`` or the :class:`HubError` to dead-letter it with. Every
        row is committed when this returns; it costs a handful of round trips whatever the count
        (a consumer that fetches messages in batches should use it)."""
        return await fire_many(self.engine, self.bound, events, self.states)

    def ok(self) -> None:
        """Clear the trigger's last error (it works again)."""
        self.states.ensure(*self.bound.key, self.bound.trigger.type)
        self.states.update(*self.bound.key, last_error=None)

    def failed(self, message: str) -> None:
        """Record an error on the trigger (shown by ``GET /v1/triggers``)."""
        self.states.ensure(*self.bound.key, self.bound.trigger.type)
        self.states.failed(*self.bound.key, message)
