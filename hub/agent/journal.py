"""The agent's child steps: each model turn and each tool call is a step run of its own.

Paths hang under the agent step's: ``assistant.turn[2]``, ``assistant.tools[3]``,
``assistant.tools[3].approval``. A child whose newest run is SUCCESS is done: a re-run of the
agent (a resume after a crash or a pause) reads its output instead of asking the model again or
calling the tool again. A child that was RUNNING when its process died is closed as interrupted
by the engine's resume, and runs again (at least once; tools get a stable idempotency key).
A child that waits for the outside world (a tool call's approval) pauses holding a resume token of
its own; ``engine.complete`` ends it and wakes the execution, and the agent step, paused with it,
runs again and reads the child's output.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from hub.tasks.base import TaskContext

SUCCESS, FAILED, PAUSED, RUNNING = "SUCCESS", "FAILED", "PAUSED", "RUNNING"


class Journal:
    """The child step runs of one agent step, read once when the step (re)starts."""

    def __init__(self, ctx: TaskContext):
        from hub.store.store import Store

        if not isinstance(ctx.store, Store):
            from hub.errors import TaskError

            raise TaskError("llm.agent needs the hub's store (its tool calls are durable steps)", retryable=False)
        self.ctx, self.store = ctx, ctx.store
        prefix = f"{ctx.path}."
        self.newest: dict[str, dict[str, Any]] = {}
        self.attempts: dict[str, int] = {}
        for row in self.store.step_runs(ctx.execution_id):
            if row["path"].startswith(prefix):
                self.newest[row["path"]] = row
                self.attempts[row["path"]] = max(self.attempts.get(row["path"], 0), int(row["attempt"]))

    def done(self, path: str) -> dict[str, Any] | None:
        """The output of ``path`` when its newest run succeeded."""
        row = self.newest.get(path)
        return row["output"] if row is not None and row["state"] == SUCCESS else None

    def saved_state(self, path: str) -> dict[str, Any]:
        """What ``path`` saved when it paused (handed back to it when it runs again)."""
        row = self.newest.get(path)
        return dict(row.get("data") or {}) if row is not None and row["state"] == PAUSED else {}

    def start(self, path: str, task_type: str, params: Any) -> tuple[int, int]:
        """A child run starts: ``(row id, attempt)``."""
        attempt = self.attempts.get(path, 0) + 1
        self.attempts[path] = attempt
        row_id = self.store.start_step(
            self.ctx.execution_id, path, self.ctx.task_id, task_type, attempt, self.ctx.redact(params), time.time()
        )
        return row_id, attempt

    def finish(self, row_id: int, path: str, state: str, *, output: Any = None,
               error: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
        self.store.finish_step(
            row_id, state, output=self.ctx.redact(output), error=error, data=data, execution_id=self.ctx.execution_id
        )
        self.newest[path] = {"path": path, "state": state, "output": output, "data": data, "attempt": self.attempts[path]}

    def pause(self, row_id: int, path: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Mark a child run PAUSED, keeping its resume token, unless ``engine.complete`` ended it
        meanwhile: None when it paused, else the ended row (its output or error is the answer)."""
        from hub.engine.pauses import pause_step

        ended = pause_step(self.store, row_id, data)
        state = PAUSED if ended is None else ended["state"]
        output = None if ended is None else self.store.load_output(ended)
        self.newest[path] = {"path": path, "state": state, "output": output, "data": data, "attempt": self.attempts[path]}
        return None if ended is None else {**ended, "output": output}

    def child(self, path: str, attempt: int, row_id: int | None = None) -> TaskContext:
        """The task context of a child step: its own path (idempotency key), attempt and saved state,
        and, given its row, a resume token of its own that ``engine.complete`` ends it with (the
        agent's token would end the agent step)."""
        from dataclasses import replace

        issue = self.ctx.child_resume_token
        own = None if row_id is None or issue is None else functools.partial(issue, row_id)
        return replace(self.ctx, path=path, attempt=attempt, state=self.saved_state(path), issue_resume_token=own)
