"""The step run of a control-flow task (``sequential``, ``for_each``, ``subflow``, ...): opened,
or re-opened on resume, its decisions remembered on it, then closed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from hub.engine.run import Run, step_event
from hub.engine.states import State
from hub.flow.models import Task

if TYPE_CHECKING:
    from hub.engine.base import WalkerBase


class Container:
    """The step run of a control-flow task: opened (or re-opened on resume), then closed."""

    def __init__(self, engine: WalkerBase, run: Run, task: Task, path: str, row: dict[str, Any] | None):
        self.engine = engine
        self.run = run
        self.task = task
        self.path = path
        self.started = time.time()
        if row is not None and row["state"] in (State.RUNNING, State.PAUSED, State.FAILED, State.KILLED):
            self.step_id = row["id"]
            self.data: dict[str, Any] = dict(row.get("data") or {})
            self.attempt = row["attempt"]
            if row["state"] != State.RUNNING:
                engine.flush(run).finish_step(self.step_id, State.RUNNING, data=self.data)
        else:
            self.attempt = 1
            self.data = {}
            self.step_id = engine.flush(run).start_step(run.id, path, task.id, task.type, 1, None, self.started)
        engine.emit(step_event(run, task, path, State.RUNNING, self.attempt, None))

    def remember(self, **values: Any) -> None:
        self.data.update(values)
        self.engine.flush(self.run).update_step_data(self.step_id, self.data)

    def done(self, output: Any, state: State = State.SUCCESS) -> None:
        value = self.run.redactor(to_jsonable_python(output, fallback=str))
        self.engine.flush(self.run).finish_step(
            self.step_id, state, output=value, data=self.data, execution_id=self.run.id
        )
        self.engine.emit(step_event(self.run, self.task, self.path, state, self.attempt, time.time() - self.started))

    def failed(self, error: dict[str, Any]) -> None:
        self.engine.flush(self.run).finish_step(self.step_id, State.FAILED, error=error, data=self.data)
        self.engine.emit(
            step_event(self.run, self.task, self.path, State.FAILED, self.attempt, time.time() - self.started, error)
        )
