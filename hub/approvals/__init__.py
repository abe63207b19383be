"""Human approval gates: the ``approval`` task pauses an execution until approvers decide from
Slack, an email link, the web page or the API (see docs/approvals.md).

Wiring, once per process::

    approvals = install(engine)   # engine.services under APPROVALS; cancels gates of killed executions

A process's plugins call :func:`hooks` instead: the same listener and sweep, and the service built
when something first needs it (a gate, an answer, a kill, a decided gate to resume), so a worker
whose flows have no gate never imports the service, its channels and its table models.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hub.core.tasks import ServiceKey

if TYPE_CHECKING:
    from hub.approvals.service import Approvals
    from hub.engine.runner import Engine
    from hub.store.store import Store
    from hub.tasks.base import TaskContext

APPROVALS: ServiceKey[Approvals | Pending] = ServiceKey("approvals")
"""The process's approvals service, or the :class:`Pending` that builds it on first need (``install``)."""
SERVICE = APPROVALS.name
GATES_TABLE = "approval_gates"  # hub.approvals.tables.ApprovalGate


class Pending:
    """The process's entry under :data:`APPROVALS` until the service is first needed: builds it then."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def build(self) -> Approvals:
        return install(self.engine)


def install(engine: Engine) -> Approvals:
    """The engine's approvals service (built on first call), listening for killed executions."""
    from hub.approvals.service import Approvals
    from hub.approvals.settings import ApprovalSettings

    existing = engine.services.get(SERVICE)
    if isinstance(existing, Approvals):
        return existing
    from hub.approvals.notify import refresh_slack

    service = Approvals(engine.store, home=engine.settings.home, clock=engine.clock, engine=engine,
                        refresh=refresh_slack, settings=engine.settings.section(ApprovalSettings))
    engine.services[SERVICE] = service
    if not isinstance(existing, Pending):  # else hooks() listens and sweeps for it already
        _listen(engine)
    return service


def hooks(engine: Engine) -> Pending | Approvals:
    """The plugin's service: the kill listener and the sweep now, the service on first need."""
    existing = engine.services.get(SERVICE)
    if existing is not None:
        return existing  # type: ignore[no-any-return]
    pending = Pending(engine)
    engine.services[SERVICE] = pending
    _listen(engine)
    return pending


def _listen(engine: Engine) -> None:
    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "execution" and event.get("state") == "KILLED":
            service = install(engine)
            service._later(service.cancel_execution(str(event["execution_id"])))

    async def sweep() -> list[str]:
        if isinstance(engine.services.get(SERVICE), Pending) and not await asyncio.to_thread(decided_gate_waits, engine.store):
            return []  # nothing to resume: the service stays unbuilt
        return await install(engine).sweep()

    engine.listeners.append(on_event)
    engine.sweepers.append(sweep)


def decided_gate_waits(store: Store) -> bool:
    """Whether a decided gate's step is still paused (what :meth:`Approvals.sweep` resumes), in one
    query that needs no table model."""
    from sqlalchemy import column, select, table

    from hub.approvals.states import DECIDED
    from hub.engine.states import State
    from hub.store.store import STEPS

    gates = table(GATES_TABLE, column("execution_id"), column("path"), column("state"))
    query = (
        select(gates.c.path)
        .join(STEPS, (STEPS.c.execution_id == gates.c.execution_id) & (STEPS.c.path == gates.c.path))
        .where(gates.c.state.in_(sorted(DECIDED)), STEPS.c.state == State.PAUSED)
        .limit(1)
    )
    with store.engine.connect() as conn:
        return conn.execute(query).first() is not None


def for_context(ctx: TaskContext) -> Approvals:
    """The service a running approval step uses (the process's, or one for this store)."""
    from hub.approvals.service import Approvals

    service = ctx.services.get(SERVICE)  # not ctx.service(APPROVALS): it may be Pending
    if isinstance(service, Pending):
        return service.build()
    if isinstance(service, Approvals):
        return service
    from hub.store.store import Store

    if not isinstance(ctx.store, Store):
        from hub.errors import TaskError

        raise TaskError("approval needs the hub's store; none was given", retryable=False)
    from hub.approvals.notify import refresh_slack
    from hub.approvals.settings import ApprovalSettings

    return Approvals(ctx.store, home=ctx.settings.home, refresh=refresh_slack,
                     settings=ctx.settings.section(ApprovalSettings))
