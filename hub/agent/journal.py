"""The agent's child steps: each model turn and each tool call is a step run of its own.

Paths hang under the agent step's: ``assistant.turn[2]``, ``assistant.tools[3]``,
``assistant.tools[3].approval``. A child whose newest run is SUCCESS is done: a re-run of the
agent (a resume after a crash or a pause) reads its output instead of asking the model again or
calling the tool again. A child that was RUNNING when its process died is closed as interrupted
by the engine's resume, and runs again (at least once; tools get a stable idempotency key).
"""

from __future__ import annotations

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

    def child(self, path: str, attempt: int) -> TaskContext:
        """The task context of a child step: its own path (idempotency key), attempt and saved state."""
        from dataclasses import replace

        # no resume token of its own: a child's pause pauses the agent step, which runs again and
        # reads the child's outcome (the agent's token would end the agent step with it)
        return replace(self.ctx, path=path, attempt=attempt, state=self.saved_state(path), issue_resume_token=None)
