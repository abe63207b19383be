"""The step walker: walks a flow, checkpoints every step, and never talks to the outside itself.

One class made of parts, each in a module of its own: what they share (:mod:`hub.engine.base`),
leaf steps (:mod:`hub.engine.leaf`), control flow (:mod:`hub.engine.control`) and distributed
fan-out (:mod:`hub.engine.fanout`). Here: the walk of an execution and the dispatch of a step to
the part that runs its kind. The :class:`~hub.engine.runner.Engine` adds the life cycle of
executions (start, claim, resume, restart, kill).

An execution is replayed from its step runs: a step whose newest run is committed (SUCCESS,
WARNING, SKIPPED) is not run again, its stored output is used. So a process killed mid-flow
loses nothing: the next run of the same execution continues after the last committed step, and
only the step that was in flight runs again (at-least-once; tasks get an idempotency key).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic_core import to_jsonable_python

from hub.engine import pauses
from hub.engine.base import HELD_ROWS
from hub.engine.control import ControlSteps, expose_children
from hub.engine.fanout import is_iteration
from hub.engine.frame import Frame
from hub.engine.leaf import LeafSteps
from hub.engine.run import PauseSignal, Run, StepCall, StepFailed, step_event
from hub.engine.states import COMMITTED, State
from hub.errors import ExpressionError
from hub.flow.durations import format_duration
from hub.flow.expressions import Scope
from hub.flow.models import Task

log = logging.getLogger(__name__)


class Walker(ControlSteps, LeafSteps):
    """Walks one execution's flow: every step run, recorded, and replayed on resume."""

    async def walk_flow(self, run: Run) -> dict[str, Any]:
        """Walk the execution's tasks, then its handlers; end it (or pause it). Returns its row."""
        if is_iteration(run.execution):  # one iteration of a distributed for_each
            return await self.walk_iteration(run)
        flow = run.flow
        execution_id = run.id
        base, error = self.base_scope(run)
        root = Frame(outputs=Scope("outputs", {}, "task"), base=base)
        state = State.FAILED
        try:
            # cut short from outside its steps (a variable that does not render, the flow's
            # timeout): a step left open by an earlier run or by the cut (a paused wait, a loop)
            # ends with it, before the handlers run
            aborted = error is not None and bool(run.steps)
            try:
                if error is None:  # a variable that does not render fails the execution before any task
                    async with asyncio.timeout(flow.timeout):
                        await self.run_tasks(run, flow.tasks, root)
                    state = State.WARNING if run.warning else State.SUCCESS
            except TimeoutError:
                state, aborted = State.FAILED, True
                error = {
                    "type": "FlowTimeout",
                    "message": f"the execution ran past the flow's timeout of {format_duration(flow.timeout or 0)}",
                    "retryable": False,
                }
            except StepFailed as failed:
                state, error = State.FAILED, failed.error
            if aborted:
                await self.write(run, self.store.end_open_steps, execution_id, State.FAILED)
            if state == State.FAILED and flow.errors:
                handler_frame = root.with_error(run.redactor(error or {}))
                try:
                    await self.run_tasks(run, flow.errors, handler_frame)
                except StepFailed as failed:
                    log.warning("error handler failed in %s: %s", execution_id, failed)
            if flow.finally_:
                final_frame = root.with_error(run.redactor(error)) if error else root
                try:
                    await self.run_tasks(run, flow.finally_, final_frame)
                except StepFailed as failed:
                    if state != State.FAILED:
                        state, error = State.FAILED, failed.error
        except PauseSignal as pause:
            return await self.pause_execution(run, pause)
        outputs = None
        if state in (State.SUCCESS, State.WARNING) and flow.outputs:
            try:
                outputs = to_jsonable_python(
                    self.expr.render(flow.outputs, root.scope(), "outputs"), fallback=str
                )
                outputs = run.redactor(outputs)
            except ExpressionError as exc:
                state, error = State.FAILED, run.redactor(exc.to_dict())
        return await self.finish(run, state, outputs, error)

    async def run_task(self, run: Run, task: Task, frame: Frame) -> None:
        """Run one step: replayed from its committed run, skipped by its condition, or run by its kind."""
        if len(run.pending_steps) >= HELD_ROWS:  # a long run of pure steps: what it holds is written now
            await self.write_held(run)
        path = frame.path(task.id)
        row = run.steps.get(path)
        if row is not None and row["state"] in COMMITTED:
            frame.outputs[task.id] = self.store.load_output(row)
            if (row.get("data") or {}).get(pauses.COMPLETED_KEY) is True:
                await self._observe_completion(run, task, path, row, frame.outputs[task.id])
            if row["state"] == State.WARNING:
                run.warning = True
            expose_children(task, frame, frame.outputs[task.id])
            return
        if row is not None:
            run.attempts[path] = row["attempt"]
            if row["state"] == State.FAILED and (row.get("data") or {}).get(pauses.COMPLETED_KEY):
                self._ended_failed(run, task, frame, row)  # failed from outside (engine.complete): final
                return
        if task.if_ is not None:
            try:
                go = self.expr.condition(task.if_, frame.scope(), f"{task.id}.if")
            except ExpressionError as exc:
                self.fail_record(run, task, path, exc.to_dict())  # raises unless allow_failure
                frame.outputs[task.id] = None
                return
            if not go:
                now = time.time()
                self.hold(
                    run, run.id, path, task.id, task.type, run.attempts.get(path, 0) + 1, State.SKIPPED,
                    started_at=now, ended_at=now,
                )
                frame.outputs[task.id] = None
                self.emit(step_event(run, task, path, State.SKIPPED, 1, 0.0))
                return
        kind = self.registry.get(task.type)
        if kind is None:  # the flow validated against another registry
            self.fail_record(run, task, path, {"type": "UnknownTaskType", "message": f"no task type {task.type!r} here"})
            frame.outputs[task.id] = None
            return
        if getattr(kind, "control", False):
            await self.run_control(run, task, frame, path, row)
        else:
            await self.run_leaf(run, task, kind, frame, path)

    async def _observe_completion(self, run: Run, task: Task, path: str, row: dict[str, Any], output: Any) -> None:
        """A step ended from outside (``engine.complete``) passes through the middleware once,
        when its execution goes on, as the resumed end of its pause (its span, its metrics)."""
        run.steps[path] = {**row, "state": State.PAUSED}
        info = StepCall(run, task, path, row["attempt"], None, None, control=False)

        async def answered() -> Any:
            return output

        try:
            await self.wrap(info, answered)()
        finally:
            run.steps[path] = row
        data = {**(row.get("data") or {}), pauses.COMPLETED_KEY: "observed"}
        await self.write(run, pauses.set_data, self.store, row["id"], data)
        self.emit(step_event(run, task, path, State(row["state"]), row["attempt"], None))

    def _ended_failed(self, run: Run, task: Task, frame: Frame, row: dict[str, Any]) -> None:
        if not task.allow_failure:
            raise StepFailed(row["error"] or {}, row["path"], task.id)
        run.warning = True
        frame.outputs[task.id] = None
