"""Control-flow kinds. The runner walks them (it owns ordering and checkpoints); these classes
declare their parameters, which of them hold nested tasks, and their documentation."""

from __future__ import annotations

import builtins
from typing import Any, ClassVar, Literal

from pydantic import Field

from hub.flow.durations import Duration
from hub.tasks.base import Params

NestedKind = Literal["list", "map"]


class ControlKind:
    """Base of control-flow kinds: ``nested`` names the parameters that hold task lists."""

    type: ClassVar[str]
    Params: ClassVar[builtins.type[Params]]
    control: ClassVar[bool] = True
    nested: ClassVar[dict[str, NestedKind]] = {}
    sequential_children: ClassVar[bool] = True

    async def run(self, ctx: Any, params: Any) -> Any:  # pragma: no cover - the runner walks these
        raise RuntimeError(f"{self.type} is walked by the runner, not run")


class SequentialParams(Params):
    tasks: list[Any] = Field(min_length=1, description="Tasks run one after the other.")


class Sequential(ControlKind):
    """Run a group of tasks in order (useful as one branch of a ``parallel``)."""

    type = "sequential"
    Params = SequentialParams
    nested = {"tasks": "list"}


class ParallelParams(Params):
    tasks: list[Any] = Field(min_length=1, description="Tasks run at the same time.")
    concurrency: int | None = Field(None, ge=1, description="At most this many at once (default: all).")


class Parallel(ControlKind):
    """Run tasks at the same time; fails when any of them fails (after all have ended)."""

    type = "parallel"
    Params = ParallelParams
    nested = {"tasks": "list"}
    sequential_children = False


class IfParams(Params):
    condition: Any = Field(description="An expression; truthy runs 'then', otherwise 'else'.")
    then: list[Any] = Field(min_length=1)
    else_: list[Any] = Field(default_factory=list, alias="else")


class If(ControlKind):
    """Branch on a condition. Output: ``{"branch": "then" | "else", "condition": bool}``."""

    type = "if"
    Params = IfParams
    nested = {"then": "list", "else": "list"}


class SwitchParams(Params):
    value: Any = Field(description="An expression whose string value picks the case.")
    cases: dict[str, list[Any]] = Field(min_length=1)
    default: list[Any] = Field(default_factory=list)


class Switch(ControlKind):
    """Run the case that matches ``value`` (or ``default``). Output: ``{"case": name, "value": v}``."""

    type = "switch"
    Params = SwitchParams
    nested = {"cases": "map", "default": "list"}


class ForEachParams(Params):
    items: Any = Field(description="A list, or an expression giving one.")
    concurrency: int = Field(1, ge=1, description="Iterations run at once.")
    tasks: list[Any] = Field(min_length=1)
    distributed: bool = Field(False, description="Fan iterations out as child jobs (scaled-out mode).")


class ForEach(ControlKind):
    """Run ``tasks`` once per item, with ``item`` and ``index`` in scope.

    Output: a list, in item order, of ``{task id: output}`` for each iteration.
    """

    type = "for_each"
    Params = ForEachParams
    nested = {"tasks": "list"}


class SubflowParams(Params):
    flow: str = Field(description="The flow to start: namespace.flow_id (or flow_id in the same namespace).")
    inputs: dict[str, Any] = Field(default_factory=dict)
    wait: bool = Field(True, description="Wait for it to end and take its outputs.")
    fail_on_error: bool = Field(True, description="Fail this step when the subflow fails (with wait).")
    distributed: bool = Field(False, description="Queue the child for any worker; the parent pauses meanwhile.")
    labels: dict[str, str] = Field(default_factory=dict)


class Subflow(ControlKind):
    """Start another flow as a child execution. Output: ``{"execution_id", "state", "outputs"}``."""

    type = "subflow"
    Params = SubflowParams


class WaitParams(Params):
    duration: Duration | None = Field(None, description="How long to wait.")
    until: str | None = Field(None, description="An ISO 8601 date-time to wait for.")


class Wait(ControlKind):
    """Wait for a duration, or until a time. A resumed execution waits only what is left."""

    type = "wait"
    Params = WaitParams

