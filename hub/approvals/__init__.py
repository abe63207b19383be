"""Human approval gates: the ``approval`` task pauses an execution until approvers decide from
Slack, an email link, the web page or the API (see docs/approvals.md).

Wiring, once per process::

    approvals = install(engine)   # engine.services under APPROVALS; cancels gates of killed executions
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hub.core.tasks import ServiceKey

if TYPE_CHECKING:
    from hub.approvals.service import Approvals
    from hub.engine.runner import Engine
    from hub.tasks.base import TaskContext

APPROVALS: ServiceKey[Approvals] = ServiceKey("approvals")
"""The process's approvals service (``install`` builds it)."""
SERVICE = APPROVALS.name


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

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") == "execution" and event.get("state") == "KILLED":
            service._later(service.cancel_execution(str(event["execution_id"])))

    engine.listeners.append(on_event)
    engine.sweepers.append(service.sweep)
    return service


def for_context(ctx: TaskContext) -> Approvals:
    """The service a running approval step uses (the process's, or one for this store)."""
    from hub.approvals.service import Approvals

    service = ctx.service(APPROVALS)
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
