"""How the runner runs a leaf step: render and validate its parameters, call the task inside
the middleware with its timeout, record the attempt, and retry by its policy.

A side-effecting step's attempt is recorded by a :class:`Checkpoint`: its RUNNING row is written
only when the step takes longer than :data:`START_DELAY` (or pauses, or asks for its resume
token), so a quick step costs one commit — its finished row, written before the next step
starts — instead of two. A step that crashes the process before its RUNNING row was written
simply runs again, with the same idempotency key, as one whose row was written would — but with
the same attempt number (an attempt shorter than START_DELAY that dies with its process is not
counted against ``max_attempts``). A kill records the attempt KILLED whenever it came.
"""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from hub.engine import children, pauses
from hub.engine.base import WalkerBase
from hub.engine.frame import Frame
from hub.engine.retry import backoff, should_retry
from hub.engine.run import PauseSignal, Run, StepCall, StepFailed, StepLog, step_event
from hub.engine.states import State
from hub.engine.timers import StartTimer
from hub.errors import ExpressionError, HubError, InvalidParameters, Paused, Retry, TaskTimeout, error_dict
from hub.flow.durations import format_duration
from hub.flow.models import Task
from hub.tasks.base import TaskContext

START_DELAY = 0.05
"""Seconds a side-effecting step runs before its RUNNING row is written (watchers see it then)."""


class Checkpoint:
    """The stored record of one attempt of a side-effecting step."""

    def __init__(self, engine: WalkerBase, run: Run, task: Task, path: str, attempt: int, params: Any, started: float):
        self.engine, self.run, self.task, self.path = engine, run, task, path
        self.attempt, self.params, self.started = attempt, params, started
        self.step_id: int | None = None
        self.ended = False
        self._lock: asyncio.Lock | None = None  # made when a RUNNING row is first written
        self._writer: asyncio.Task[None] | None = None

    def _start_args(self) -> tuple[str, str, str, str, int, Any, float]:
        return (self.run.id, self.path, self.task.id, self.task.type, self.attempt, self.params, self.started)

    async def begin(self, eager: bool) -> None:
        """Write the RUNNING row now (``eager``: a kind that pauses) or once START_DELAY has passed."""
        if eager:
            await self._write_start()
            return
        loop = asyncio.get_running_loop()
        timer = self.engine.start_timer
        if timer is None or timer.loop is not loop:  # (an engine can outlive the loop it ran on)
            timer = self.engine.start_timer = StartTimer(loop, START_DELAY)
        timer.add(self)

    def due(self) -> None:
        """START_DELAY has passed: write the RUNNING row unless the attempt has ended."""
        if not self.ended and self.step_id is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_start())

    async def _write_start(self, pausing: bool = False) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.step_id is not None or (self.ended and not pausing):
                return
            held, self.run.row_values = self.run.row_values or None, {}
            self.step_id = await self.engine.write(self.run, self.engine.store.start_step, *self._start_args(),
                                                   execution_values=held)

    def started_now(self) -> int:
        """The RUNNING row, written now if it is not yet (for a resume token asked for by the task,
        where nothing can be awaited)."""
        if self.step_id is None:
            if self._lock is not None and self._lock.locked():
                raise RuntimeError(f"step {self.task.id}: its start is being written; a kind that pauses "
                                   "declares pauses = True")
            held, self.run.row_values = self.run.row_values or None, {}
            self.step_id = self.engine.flush(self.run).start_step(*self._start_args(), execution_values=held)
        return self.step_id

    async def paused(self) -> int:
        """The attempt pauses: its RUNNING row's id (the row the pause marks PAUSED), written now
        if it is not yet — or awaited, if the timer is writing it."""
        self.stop_timer()
        await self._write_start(pausing=True)
        assert self.step_id is not None
        return self.step_id

    def stop_timer(self) -> None:
        self.ended = True  # (its StartTimer drops it)

    async def end(self, state: str, *, output: Any = None, error: dict[str, Any] | None = None,
                  data: dict[str, Any] | None = None) -> float:
        """Commit the attempt's end (one transaction with what the run holds back); its end time."""
        self.stop_timer()
        ended = time.time()
        if self._lock is None:  # no RUNNING row was written or is being written: one commit
            await self._write_end(state, ended, output, error, data)
            return ended
        async with self._lock:
            if self.step_id is not None:
                await self.engine.write(self.run, self.engine.store.finish_step, self.step_id, state, output=output,
                                        error=error, ended_at=ended, execution_id=self.run.id)
                return ended
            await self._write_end(state, ended, output, error, data)
        return ended

    async def _write_end(self, state: str, ended: float, output: Any, error: dict[str, Any] | None,
                         data: dict[str, Any] | None) -> None:
        """The attempt as one finished row, with what the run holds back, in one transaction."""
        row = self.engine.store.step_values(
            self.run.id, self.path, self.task.id, self.task.type, self.attempt, state, params=self.params,
            output=output, error=error, started_at=self.started, ended_at=ended, data=data,
        )
        steps, logs = [*self.run.pending_steps, row], self.run.pending_logs
        self.run.pending_steps, self.run.pending_logs = [], []
        held, self.run.row_values = self.run.row_values or None, {}
        await self.engine.db(self.engine.store.write_batch, steps, logs, (self.run.id, held) if held else None,
                             returning=False)

    def killed(self) -> None:
        """The attempt was cancelled (a kill, a timeout of the execution): record it if it started."""
        self.stop_timer()
        if self._writer is not None:
            self._writer.cancel()
        error = {"type": "Killed", "message": "the execution was killed", "retryable": False}
        if self.step_id is not None:
            self.engine.store.finish_step(self.step_id, State.KILLED, error=error)
            return
        row = self.engine.store.step_values(  # killed before its RUNNING row was due: record the attempt
            self.run.id, self.path, self.task.id, self.task.type, self.attempt, State.KILLED, params=self.params,
            error=error, started_at=self.started, ended_at=time.time(),
        )
        self.run.pending_steps.append(row)
        self.engine.flush(self.run)


class LeafSteps(WalkerBase):
    """The walker's part that runs leaf steps (tasks that do the work)."""

    async def run_leaf(self, run: Run, task: Task, kind: Any, frame: Frame, path: str) -> None:
        """Run one leaf step to its end: success, pause, a final failure, or retries by its policy."""
        policy = task.retry or run.flow.retry
        first_start = self.clock.time()
        local = 0
        instance = self.registry.instance(task.type)
        pure = getattr(kind, "pure", False)
        while True:
            local += 1
            attempt = run.attempts.get(path, 0) + 1
            run.attempts[path] = attempt
            started = time.time()
            prepared = self._prepare_params(run, task, kind, frame, path)
            if prepared is None:
                return
            rendered, params = prepared
            stored = run.redactor(to_jsonable_python(rendered, fallback=str))
            failure = await self._leaf_attempt(run, task, kind, instance, frame, path, attempt, params, stored, started, pure)
            if failure is None:
                return
            error, retry_after, checkpoint = failure
            error = run.redactor(to_jsonable_python(error, fallback=str))
            delay = backoff(policy, local, self.rng) if policy else 0.0
            if retry_after is not None:
                delay = max(delay, retry_after)
            again = should_retry(policy, error, local, self.clock.time() - first_start, delay)
            state = State.WARNING if (not again and task.allow_failure) else State.FAILED
            if again:
                error = {**error, "retry_in": round(delay, 3)}
            if checkpoint is None:
                ended = time.time()
                self.hold(run, run.id, path, task.id, task.type, attempt, state, params=stored, error=error,
                             started_at=started, ended_at=ended)
            else:
                ended = await checkpoint.end(state, error=error)
            self.emit(step_event(run, task, path, state, attempt, ended - started, error))
            if again:
                await self.clock.sleep(delay)
                continue
            if task.allow_failure:
                run.warning = True
                frame.outputs[task.id] = None
                return
            raise StepFailed(error, path, task.id)

    def _prepare_params(self, run: Run, task: Task, kind: Any, frame: Frame, path: str) -> tuple[Any, Any] | None:
        """The rendered and validated parameters; None after recording why they could not be made."""
        try:
            rendered = self.expr.render(task.params, frame.scope(), task.id)
            return rendered, kind.Params.model_validate(rendered)
        except ExpressionError as exc:
            error = exc.to_dict()
        except ValidationError as exc:
            error = InvalidParameters.after_rendering(task.id, exc).to_dict()
        run.attempts[path] -= 1
        self.fail_record(run, task, path, error)
        frame.outputs[task.id] = None
        return None

    async def _leaf_attempt(
        self, run: Run, task: Task, kind: Any, instance: Any, frame: Frame, path: str, attempt: int,
        params: Any, stored: Any, started: float, pure: bool,
    ) -> tuple[dict[str, Any], float | None, Checkpoint | None] | None:
        """One attempt: None when the step succeeded (or paused: PauseSignal), else what failed."""
        checkpoint = None
        child_runs: list[int] = []  # the child step runs it issued resume tokens for
        if not pure:
            checkpoint = Checkpoint(self, run, task, path, attempt, stored, started)
            await checkpoint.begin(eager=getattr(kind, "pauses", False))
            if self.listeners:
                self.emit(step_event(run, task, path, State.RUNNING, attempt, None))
        ctx = TaskContext(
            execution_id=run.id, namespace=run.flow.namespace, flow_id=run.flow.id, task_id=task.id, path=path,
            attempt=attempt, settings=self.settings, store=self.store,
            logger=StepLog(self, run, path, buffered=pure),  # type: ignore[arg-type]
            redact=run.redactor, state=dict((run.steps.get(path) or {}).get("data") or {}),
            services=self.services, flow=run.flow, execution=run.execution,
            issue_resume_token=None if checkpoint is None else self._token_issuer(checkpoint),
            child_resume_token=None if checkpoint is None else functools.partial(self._child_token, child_runs),
            emit=functools.partial(self._emit_for, run.id, path),
            run_flow=functools.partial(children.run_flow, self, run, path),
        )
        try:
            call = self.wrap_step(StepCall(run, task, path, attempt, params, ctx), instance, pure)
            output = await _with_timeout(task, call)
        except Paused as pause:
            if child_runs:  # the walk wakes the execution if one is completed before it is written PAUSED
                run.paused_steps.extend(await self.db(pauses.still_paused, self.store, child_runs))
            await self._leaf_paused(run, task, frame, path, attempt, stored, started, checkpoint, pause)
            return None
        except Retry as signal:
            return {"type": "Retry", "message": str(signal), "retryable": True}, signal.after, checkpoint
        except HubError as exc:
            return exc.to_dict(), getattr(exc, "retry_after", None), checkpoint
        except asyncio.CancelledError:
            if checkpoint is not None:
                checkpoint.killed()
            raise
        except Exception as exc:
            return error_dict(exc), None, checkpoint
        value = run.redactor(to_jsonable_python(output, fallback=str))
        if checkpoint is None:
            ended = time.time()
            self.hold(run, run.id, path, task.id, task.type, attempt, State.SUCCESS, params=stored, output=value,
                         started_at=started, ended_at=ended, data=ctx.state or None)
        else:
            ended = await checkpoint.end(State.SUCCESS, output=value, data=ctx.state or None)
        frame.outputs[task.id] = value
        if self.listeners:
            self.emit(step_event(run, task, path, State.SUCCESS, attempt, ended - started))
        return None

    def _child_token(self, child_runs: list[int], step_id: int) -> str:
        """A resume token for a child step run of the step (its row ``step_id``), remembered so
        that the walk watches the child when the step pauses on it."""
        child_runs.append(step_id)
        return pauses.issue_token(self.store, step_id)

    def _token_issuer(self, checkpoint: Checkpoint) -> Any:
        def issue() -> str:
            return pauses.issue_token(self.store, checkpoint.started_now())

        return issue

    async def _leaf_paused(
        self, run: Run, task: Task, frame: Frame, path: str, attempt: int, stored: Any, started: float,
        checkpoint: Checkpoint | None, pause: Paused,
    ) -> None:
        """Record the pause (raises PauseSignal), or go on when the step was answered meanwhile.
        Committed (in a thread on a server database) before the pause is told."""
        data = {**(pause.data or {}), "reason": pause.reason}
        if checkpoint is not None:
            step_id = await checkpoint.paused()
        else:
            step_id = await self.write(run, self.store.start_step, run.id, path, task.id, task.type, attempt, stored,
                                       started)
        answered = await self.db(pauses.pause_step, self.store, step_id, data)
        if answered is None:
            run.paused_steps.append(step_id)
            self.emit(step_event(run, task, path, State.PAUSED, attempt, None))
            raise PauseSignal(path, pause.resume_at) from None
        if answered["state"] == State.SUCCESS:  # completed before it finished pausing
            frame.outputs[task.id] = self.store.load_output(answered)
            self.emit(step_event(run, task, path, State.SUCCESS, attempt, time.time() - started))
            return
        error = answered.get("error") or {"type": "Failed", "message": f"step {task.id} ended {answered['state']}"}
        self.emit(step_event(run, task, path, State.FAILED, attempt, time.time() - started, error))
        if not task.allow_failure:
            raise StepFailed(error, path, task.id) from None
        run.warning = True
        frame.outputs[task.id] = None

    def _emit_for(self, execution_id: str, path: str, event: dict[str, Any]) -> None:
        """A task's live event, stamped with its execution and step."""
        if self.listeners:
            self.emit({**event, "execution_id": execution_id, "path": path})


async def _with_timeout(task: Task, call: Any) -> Any:
    if not task.timeout:
        return await call()
    try:
        async with asyncio.timeout(task.timeout):
            return await call()
    except TimeoutError:
        raise TaskTimeout(f"task {task.id} timed out after {format_duration(task.timeout)}") from None
