"""What one run of an execution carries, and the small protocols around a step: the failure
and pause signals, the step's logger, and the middleware hook."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from hub.engine.states import State
from hub.flow.models import Flow, Task
from hub.flow.secrets import Redactor
from hub.tasks.base import TaskContext

if TYPE_CHECKING:
    from hub.store.store import Store


class StepFailed(Exception):
    """A step failed for good (no retry left, failure not allowed)."""

    def __init__(self, error: dict[str, Any], path: str, task_id: str):
        super().__init__(error.get("message"))
        self.error = {**error, "task_id": task_id, "path": path}


class PauseSignal(Exception):
    def __init__(self, path: str, resume_at: float | None):
        super().__init__(path)
        self.path = path
        self.resume_at = resume_at


class Run:
    """The state of one execution while it is being walked."""

    def __init__(self, execution: dict[str, Any], flow: Flow, steps: dict[str, dict[str, Any]]):
        self.execution = execution
        self.flow = flow
        self.steps = steps
        self.attempts: dict[str, int] = {}
        self.redactor = Redactor()
        self.warning = False
        self.id: str = execution["id"]
        # Runs of pure steps (set, log, fail, skips) and their log lines wait here and are written
        # together, before the next write of anything else: they have no side effect, so one lost
        # in a crash is simply computed again, and a flow of them costs one commit, not one each.
        self.pending_steps: list[tuple[Any, ...]] = []  # rows from Store.step_values
        self.pending_logs: list[dict[str, Any]] = []
        # Columns of the execution row a middleware wants written with the run's next write of
        # it — the start of a step that is not pure, or its end — instead of a transaction of
        # their own; the row the end returns shows them.
        self.row_values: dict[str, Any] = {}
        # (path, attempt, trace_id, span_id) of steps a middleware traced: put on their rows by
        # the run's final write (what is left when it pauses or dies, the middleware writes)
        self.step_contexts: list[tuple[str, int, str, str]] = []
        # step runs this walk left PAUSED: one ended while the execution was being paused wakes it
        self.paused_steps: list[int] = []


class Recorder(Protocol):
    """What a step's logger needs of the engine."""

    def flush(self, run: Run) -> Store: ...

    def emit(self, event: dict[str, Any]) -> None: ...


class StepLog:
    """The ``logger`` a task gets: lines go to the execution log (redacted) and the listeners."""

    def __init__(self, engine: Recorder, run: Run, path: str | None, buffered: bool = False):
        self.engine = engine
        self.run = run
        self.path = path
        self.buffered = buffered

    def log(self, level: int, message: Any, *args: Any, extra: Any = None, **_: Any) -> None:
        text = str(message) % args if args else str(message)
        text = self.run.redactor(text)
        name = logging.getLevelName(level).lower()
        if self.buffered:
            self.run.pending_logs.append(
                {"execution_id": self.run.id, "path": self.path, "level": name, "message": text, "ts": time.time()}
            )
        else:
            self.engine.flush(self.run).add_log(self.run.id, name, text, self.path)
        self.engine.emit({"event": "log", "execution_id": self.run.id, "path": self.path, "level": name, "message": text})

    def debug(self, msg: Any, *a: Any, **k: Any) -> None:
        self.log(logging.DEBUG, msg, *a, **k)

    def info(self, msg: Any, *a: Any, **k: Any) -> None:
        self.log(logging.INFO, msg, *a, **k)

    def warning(self, msg: Any, *a: Any, **k: Any) -> None:
        self.log(logging.WARNING, msg, *a, **k)

    def error(self, msg: Any, *a: Any, **k: Any) -> None:
        self.log(logging.ERROR, msg, *a, **k)


@dataclass
class StepCall:
    """What a step middleware sees about the call it wraps."""

    run: Run
    task: Task
    path: str
    attempt: int
    params: Any
    ctx: TaskContext | None
    control: bool = False


class Middleware:
    """Wraps every step attempt and every execution run, like Starlette middleware.

    Override either method and ``await call()`` to continue; tracing, metrics and cost limits
    are middleware, not code inside tasks. The base class passes everything through.
    """

    wraps_pure_steps: bool = True
    """False: pure steps (``set``, ``log``, ``fail``) run without this middleware's ``step`` (it
    can still see them through the engine's step events)."""

    async def step(self, info: StepCall, call: Callable[[], Awaitable[Any]]) -> Any:
        return await call()

    async def execution(self, run: Run, call: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        return await call()


def bind_execution(
    layer: Middleware, run: Run, inner: Callable[[], Awaitable[dict[str, Any]]]
) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def call() -> dict[str, Any]:
        return await layer.execution(run, inner)

    return call


def bind_step(layer: Middleware, info: StepCall, inner: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await layer.step(info, inner)

    return call


def step_event(
    run: Run, task: Task, path: str, state: State, attempt: int, duration: float | None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "event": "step",
        "execution_id": run.id,
        "path": path,
        "task_id": task.id,
        "type": task.type,
        "state": state,
        "attempt": attempt,
        "duration": duration,
        "error": error,
    }
