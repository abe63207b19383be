"""What the step-running modules (leaf, control, fanout, pauses, the queue, the run's logger)
use of the engine, as a protocol: they depend on this, not on :mod:`hub.engine.runner`, so the
engine's modules import one another in one direction only (the runner imports them)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from hub.engine.catalog import FlowCatalog
    from hub.engine.clock import Clock
    from hub.engine.frame import Frame
    from hub.engine.run import Run, StepCall
    from hub.engine.states import State
    from hub.flow.expressions import Expressions
    from hub.flow.models import Flow, Task
    from hub.settings import HubSettings
    from hub.store.store import Store


class Queue(Protocol):
    """Where executions wait to run (:mod:`hub.engine.queue`, :mod:`hub.service.queue_arq`)."""

    async def submit(self, execution_id: str, delay: float = 0.0) -> None: ...


class Walker(Protocol):
    """The engine as the steps it walks see it."""

    store: Store
    settings: HubSettings
    registry: Any
    clock: Clock
    services: dict[str, Any]
    rng: random.Random
    catalog: FlowCatalog
    expr: Expressions
    queue: Queue
    listeners: list[Callable[[dict[str, Any]], None]]

    def emit(self, event: dict[str, Any]) -> None: ...

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def flush(self, run: Run) -> Store: ...

    async def write(self, run: Run, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any: ...

    def hold(self, run: Run, *args: Any, **values: Any) -> None: ...

    def fail_record(self, run: Run, task: Task, path: str, error: dict[str, Any]) -> None: ...

    def wrap(self, info: StepCall, call: Callable[[], Awaitable[Any]], pure: bool = False) -> Callable[[], Awaitable[Any]]: ...

    def wrap_step(self, info: StepCall, instance: Any, pure: bool = False) -> Callable[[], Awaitable[Any]]: ...

    async def run_tasks(self, run: Run, tasks: list[Task], frame: Frame) -> None: ...

    async def run_task(self, run: Run, task: Task, frame: Frame) -> None: ...

    def base_scope(self, run: Run, **parts: Any) -> tuple[dict[str, Any], dict[str, Any] | None]: ...

    async def finish(self, run: Run, state: State, outputs: Any, error: dict[str, Any] | None) -> dict[str, Any]: ...

    async def start(
        self, flow: Flow | str, inputs: dict[str, Any] | None = None, *, labels: dict[str, Any] | None = None,
        trigger: dict[str, Any] | None = None, parent_id: str | None = None, parent_path: str | None = None,
        execution_id: str | None = None, enqueue: bool = True, revision: int | None = None, claim: bool = False,
    ) -> str: ...

    async def run(self, execution_id: str, flow_hint: tuple[str, str, int] | None = None) -> dict[str, Any]: ...

    async def restart(self, execution_id: str, run_now: bool = False) -> dict[str, Any]: ...
