"""The per-flow LLM budget (``max_cost`` in USD), read from the flow the execution runs.

Before each call its cost is estimated and reserved, atomically, in ``llm_calls``
(:meth:`hub.llm.records.CallLog.reserve`); the call runs only when the execution's spend,
reservations of calls in flight included, is below ``max_cost``. So parallel steps (``for_each``
with concurrency, several workers) overspend by at most one call's estimate, as one call alone
could. The real cost replaces the estimate when the answer is in."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

from hub.errors import NotFound, TaskError
from hub.flow import yamlpos

if TYPE_CHECKING:
    from hub.tasks.base import TaskContext


class BudgetExceeded(TaskError):
    """The execution's LLM cost reached the flow's ``max_cost``; retrying would not help."""

    def __init__(self, message: str, spent: float, max_cost: float):
        super().__init__(message, retryable=False, data={"spent": spent, "max_cost": max_cost})
        self.spent = spent
        self.max_cost = max_cost


def execution_row(ctx: TaskContext) -> dict[str, Any] | None:
    if ctx.execution is not None:  # the engine passed the row it runs: no read
        return ctx.execution
    if ctx.store is None:
        return None
    try:
        return ctx.store.get_execution(ctx.execution_id)
    except NotFound:
        return None


def max_cost_for(ctx: TaskContext, execution: dict[str, Any] | None) -> float | None:
    """The flow's ``max_cost``: from ``ctx.flow`` when the engine gives it, else from the stored
    revision of the flow the execution runs."""
    flow = ctx.flow
    if flow is not None and getattr(flow, "id", None) == ctx.flow_id:
        return getattr(flow, "max_cost", None)
    if not execution or ctx.store is None:  # ({} is a step run outside any execution: an eval's case)
        return None
    try:
        _, source = ctx.store.get_flow_source(execution["namespace"], execution["flow_id"], execution["revision"])
    except NotFound:
        return None
    return _max_cost_in(source)


@lru_cache(maxsize=256)
def _max_cost_in(source: str) -> float | None:
    try:
        data = yamlpos.load_data(source)
    except yamlpos.YamlSyntaxError:
        return None
    value = data.get("max_cost") if isinstance(data, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def check_budget(spent: float, max_cost: float | None, flow_id: str, before: bool) -> None:
    if max_cost is None:
        return
    if (before and spent >= max_cost) or (not before and spent > max_cost):
        raise exceeded(spent, max_cost, flow_id)


def exceeded(spent: float, max_cost: float, flow_id: str) -> BudgetExceeded:
    return BudgetExceeded(
        f"flow {flow_id!r} reached its LLM budget: this execution spent (or has reserved for calls in flight) "
        f"${spent:.6f} of max_cost ${max_cost:g}; raise max_cost in the flow or use a cheaper model",
        spent,
        max_cost,
    )
