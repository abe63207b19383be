"""How the runner runs a leaf step: render and validate its parameters, call the task inside
the middleware with its timeout, record the attempt, and retry by its policy."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from hub.engine import pauses
from hub.engine.frame import Frame
from hub.engine.retry import backoff, should_retry
from hub.engine.run import PauseSignal, Run, StepCall, StepFailed, StepLog, step_event
from hub.engine.states import State
from hub.errors import ExpressionError, HubError, InvalidParameters, Paused, Retry, TaskTimeout, error_dict
from hub.flow.durations import format_duration
from hub.flow.models import Task
from hub.tasks.base import TaskContext

if TYPE_CHECKING:
    from hub.engine.runner import Engine


async def run_leaf(engine: Engine, run: Run, task: Task, kind: Any, frame: Frame, path: str) -> None:
    policy = task.retry or run.flow.retry
    first_start = engine.clock.time()
    local = 0
    instance = engine.registry.instance(task.type)
    pure = getattr(kind, "pure", False)
    while True:
        local += 1
        attempt = run.attempts.get(path, 0) + 1
        run.attempts[path] = attempt
        started = time.time()
        try:
            rendered = engine.expr.render(task.params, frame.scope(), task.id)
            params = kind.Params.model_validate(rendered)
        except ExpressionError as exc:
            run.attempts[path] -= 1
            engine._fail_record(run, task, path, exc.to_dict())
            frame.outputs[task.id] = None
            return
        except ValidationError as exc:
            run.attempts[path] -= 1
            engine._fail_record(run, task, path, InvalidParameters.after_rendering(task.id, exc).to_dict())
            frame.outputs[task.id] = None
            return
        stored_params = run.redactor(to_jsonable_python(rendered, fallback=str))
        step_id = None
        if not pure:
            # what a middleware holds for the execution row (its trace context) goes with it
            held, run.row_values = run.row_values or None, {}
            step_id = await engine.write(
                run, engine.store.start_step, run.id, path, task.id, task.type, attempt, stored_params, started,
                execution_values=held,
            )
            engine.emit(step_event(run, task, path, State.RUNNING, attempt, None))
        ctx = TaskContext(
            execution_id=run.id,
            namespace=run.flow.namespace,
            flow_id=run.flow.id,
            task_id=task.id,
            path=path,
            attempt=attempt,
            settings=engine.settings,
            store=engine.store,
            logger=StepLog(engine, run, path, buffered=pure),  # type: ignore[arg-type]
            redact=run.redactor,
            state=dict((run.steps.get(path) or {}).get("data") or {}),
            services=engine.services,
            flow=run.flow,
            execution=run.execution,
            issue_resume_token=None if step_id is None else partial(pauses.issue_token, engine.store, step_id),
        )
        error: dict[str, Any]
        retry_after: float | None = None
        try:
            call = engine._wrap_step(StepCall(run, task, path, attempt, params, ctx), instance, pure)
            if task.timeout:
                try:
                    async with asyncio.timeout(task.timeout):
                        output = await call()
                except TimeoutError:
                    raise TaskTimeout(
                        f"task {task.id} timed out after {format_duration(task.timeout)}"
                    ) from None
            else:
                output = await call()
        except Paused as pause:
            data = {**(pause.data or {}), "reason": pause.reason}
            if step_id is None:
                step_id = engine.flush(run).start_step(
                    run.id, path, task.id, task.type, attempt, stored_params, started
                )
            answered = pauses.pause_step(engine.store, step_id, data)
            if answered is None:
                run.paused_steps.append(step_id)
                engine.emit(step_event(run, task, path, State.PAUSED, attempt, None))
                raise PauseSignal(path, pause.resume_at) from None
            if answered["state"] == State.SUCCESS:  # completed before it finished pausing
                value = engine.store.load_output(answered)
                frame.outputs[task.id] = value
                engine.emit(step_event(run, task, path, State.SUCCESS, attempt, time.time() - started))
                return
            error = answered.get("error") or {"type": "Failed", "message": f"step {task.id} ended {answered['state']}"}
            engine.emit(step_event(run, task, path, State.FAILED, attempt, time.time() - started, error))
            if task.allow_failure:
                run.warning = True
                frame.outputs[task.id] = None
                return
            raise StepFailed(error, path, task.id) from None
        except Retry as retry_signal:
            error = {"type": "Retry", "message": str(retry_signal), "retryable": True}
            retry_after = retry_signal.after
        except HubError as exc:
            error = exc.to_dict()
            retry_after = getattr(exc, "retry_after", None)
        except asyncio.CancelledError:
            if step_id is not None:
                engine.store.finish_step(
                    step_id, State.KILLED,
                    error={"type": "Killed", "message": "the execution was killed", "retryable": False},
                )
            raise
        except Exception as exc:
            error = error_dict(exc)
        else:
            value = run.redactor(to_jsonable_python(output, fallback=str))
            ended = time.time()
            if step_id is None:
                engine._hold(
                    run, run.id, path, task.id, task.type, attempt, State.SUCCESS,
                    params=stored_params, output=value, started_at=started, ended_at=ended,
                    data=ctx.state or None,
                )
            else:
                await engine.write(
                    run, engine.store.finish_step, step_id, State.SUCCESS, output=value, ended_at=ended,
                    execution_id=run.id,
                )
            frame.outputs[task.id] = value
            engine.emit(step_event(run, task, path, State.SUCCESS, attempt, ended - started))
            return
        error = run.redactor(to_jsonable_python(error, fallback=str))
        delay = backoff(policy, local, engine.rng) if policy else 0.0
        if retry_after is not None:
            delay = max(delay, retry_after)
        again = should_retry(policy, error, local, engine.clock.time() - first_start, delay)
        state = State.WARNING if (not again and task.allow_failure) else State.FAILED
        if again:
            error = {**error, "retry_in": round(delay, 3)}
        ended = time.time()
        if step_id is None:
            engine._hold(
                run, run.id, path, task.id, task.type, attempt, state,
                params=stored_params, error=error, started_at=started, ended_at=ended,
            )
        else:
            await engine.write(run, engine.store.finish_step, step_id, state, error=error, ended_at=ended)
        engine.emit(step_event(run, task, path, state, attempt, ended - started, error))
        if again:
            await engine.clock.sleep(delay)
            continue
        if task.allow_failure:
            run.warning = True
            frame.outputs[task.id] = None
            return
        raise StepFailed(error, path, task.id)
