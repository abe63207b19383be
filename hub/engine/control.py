"""How the runner walks control-flow kinds. Each container gets a step run of its own; the
decision it took (branch, case, item count, child execution) is stored on it before its children
run, so a resumed execution takes the same path."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from hub.engine import pauses
from hub.engine.base import WalkerBase, subflow_outcome
from hub.engine.container import Container
from hub.engine.fanout import ITERATION, FanOut
from hub.engine.frame import Frame
from hub.engine.run import PauseSignal, Run, StepCall, StepFailed
from hub.engine.states import TERMINAL, State
from hub.errors import HubError, InvalidParameters, NotFound
from hub.flow.durations import format_duration
from hub.flow.expressions import truthy
from hub.flow.models import Task
from hub.store.ids import new_id

SHORT_WAIT = 30.0  # waits up to this long sleep in process; longer ones pause the execution


def expose_children(task: Task, frame: Frame, output: Any) -> None:
    """After a for_each, ``outputs.<child>`` outside the loop is the list of its iteration values."""
    if task.type != "for_each" or not isinstance(output, list):
        return
    for child in task.descendants():
        frame.outputs[child.id] = [it.get(child.id) if isinstance(it, dict) else None for it in output]


def subflow_depth(engine: WalkerBase, execution: dict[str, Any]) -> int:
    """How many subflow steps started ``execution`` (0: a root). Kept in the trigger as ``depth``;
    for executions started before it was, counted along the parents (at most the limit + 1)."""
    depth, trigger = 0, execution.get("trigger") or {}
    limit = engine.settings.subflow_max_depth
    while trigger.get("type") in ("subflow", ITERATION) and depth <= limit:
        if trigger.get("type") == "subflow":
            if isinstance(trigger.get("depth"), int):
                return depth + int(trigger["depth"])
            depth += 1
        try:
            trigger = engine.store.get_execution(str(trigger.get("parent_execution_id")))["trigger"] or {}
        except NotFound:
            break
    return depth


HANDLERS = {
    "sequential": "_sequential",
    "parallel": "_parallel",
    "if": "_if",
    "switch": "_switch",
    "for_each": "_for_each",
    "subflow": "_subflow",
    "wait": "_wait",
}
"""The control-flow kinds and the method of :class:`ControlSteps` that walks each."""


class ControlSteps(FanOut):
    """The walker's part that runs control-flow steps (containers of other steps)."""

    async def run_control(self, run: Run, task: Task, frame: Frame, path: str, row: dict[str, Any] | None) -> None:
        box = Container(self, run, task, path, row)
        handler = getattr(self, HANDLERS[task.type])

        async def call() -> Any:
            return await handler(run, task, frame, box)

        info = StepCall(run, task, path, box.attempt, task.params, None, control=True)
        try:
            output = await self.wrap(info, call)()
        except (StepFailed, HubError) as exc:  # a child failed for good, or this container itself
            error = exc.error if isinstance(exc, StepFailed) else run.redactor(exc.to_dict())
            box.failed(error)
            if task.allow_failure:
                run.warning = True
                frame.outputs[task.id] = None
                return
            if isinstance(exc, StepFailed):
                raise
            raise StepFailed(error, path, task.id) from None
        frame.outputs[task.id] = run.redactor(to_jsonable_python(output, fallback=str))
        box.done(output)
        expose_children(task, frame, frame.outputs[task.id])

    def _render(self, value: Any, frame: Frame, where: str) -> Any:
        return self.expr.render(value, frame.scope(), where)

    def _config(self, task: Task, frame: Frame) -> Any:
        """The container's own (non-task) parameters, rendered and validated."""
        kind = self.registry.get(task.type)
        nested: dict[str, str] = getattr(kind, "nested", {})
        values = {
            k: v if k in nested else self._render(v, frame, f"{task.id}.{k}")  # nested task lists as they are
            for k, v in task.params.items()
        }
        try:
            return kind.Params.model_validate(values)  # type: ignore[union-attr]
        except ValidationError as exc:
            raise InvalidParameters.after_rendering(task.id, exc) from None

    async def _sequential(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        await self.run_tasks(run, task.params["tasks"], frame)
        return None

    async def _parallel(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        limit = self._config(task, frame).concurrency
        children: list[Task] = task.params["tasks"]
        semaphore = asyncio.Semaphore(int(limit) if limit else len(children))

        async def one(child: Task) -> None:
            async with semaphore:
                await self.run_task(run, child, frame)

        results = await asyncio.gather(*(one(c) for c in children), return_exceptions=True)
        failures = [r for r in results if isinstance(r, StepFailed)]
        if failures:
            raise failures[0]
        pauses = [r for r in results if isinstance(r, PauseSignal)]
        if pauses:
            raise _earliest(pauses)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return None

    async def _if(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        if "branch" not in box.data:
            condition = task.params["condition"]
            if isinstance(condition, str):
                value = self.expr.condition(condition, frame.scope(), f"{task.id}.condition")
            else:
                value = truthy(condition)
            box.remember(branch="then" if value else "else", condition=value)
        branch = box.data["branch"]
        tasks = task.params.get("then" if branch == "then" else "else") or []
        await self.run_tasks(run, tasks, frame)
        return {"branch": branch, "condition": box.data["condition"]}

    async def _switch(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        if "case" not in box.data:
            value = self._render(task.params["value"], frame, f"{task.id}.value")
            key = str(value).lower() if isinstance(value, bool) else str(value)
            case = key if key in task.params["cases"] else None
            box.remember(case=case, value=to_jsonable_python(value, fallback=str))
        case = box.data["case"]
        tasks = task.params["cases"][case] if case is not None else task.params.get("default") or []
        await self.run_tasks(run, tasks, frame)
        return {"case": case if case is not None else "default", "value": box.data["value"]}

    async def _for_each(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        config = self._config(task, frame)
        items = config.items
        if isinstance(items, dict):
            items = [{"key": k, "value": v} for k, v in items.items()]
        if isinstance(items, str):
            raise HubError(f"{task.id}.items must be a list, got a string: {items[:60]!r}")
        try:
            items = list(items)
        except TypeError:
            raise HubError(f"{task.id}.items must be a list, got {type(items).__name__}") from None
        if box.data.get("count") != len(items):
            box.remember(count=len(items))
        if config.distributed:  # without a concurrency, every iteration is queued at once
            limit = config.concurrency if "concurrency" in task.params else None
            return await self.fan_out(run, task, frame, box, items, limit)
        children: list[Task] = task.params["tasks"]
        results: list[Any] = [None] * len(items)
        concurrency = config.concurrency

        async def iteration(index: int, item: Any) -> None:
            inner = frame.iteration(index, item)
            await self.run_tasks(run, children, inner)
            results[index] = dict(inner.outputs.own())

        if concurrency <= 1:
            for index, item in enumerate(items):
                await iteration(index, item)
            return results
        semaphore = asyncio.Semaphore(concurrency)
        failed: list[BaseException] = []

        async def guarded(index: int, item: Any) -> None:
            async with semaphore:
                # a failure stops new iterations; a pause (e.g. an approval per item) does not
                if any(isinstance(f, StepFailed) for f in failed):
                    return
                try:
                    await iteration(index, item)
                except (StepFailed, PauseSignal) as exc:
                    failed.append(exc)

        await asyncio.gather(*(guarded(i, it) for i, it in enumerate(items)))
        steps = [f for f in failed if isinstance(f, StepFailed)]
        if steps:
            raise steps[0]
        if failed:
            raise _earliest([f for f in failed if isinstance(f, PauseSignal)])
        return results

    async def _subflow(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        parsed = self._config(task, frame)
        depth = subflow_depth(self, run.execution) + 1
        if depth > self.settings.subflow_max_depth:  # a flow calling itself (or a cycle of flows)
            raise HubError(
                f"subflow {parsed.flow} would be nested {depth} levels deep, past the limit of "
                f"{self.settings.subflow_max_depth} (HUB_SUBFLOW_MAX_DEPTH); a flow that calls itself "
                "needs a condition that stops it")
        child_id = box.data.get("child_id")
        if child_id is None or (parsed.wait and pauses.TOKEN_KEY not in box.data):
            # a parent that waits holds a resume token before its child can end: the child's end
            # completes this step with its outcome (engine.complete), whenever and wherever it ends
            decided: dict[str, Any] = {"child_id": child_id or new_id()}
            if parsed.wait:
                decided.update({pauses.TOKEN_KEY: pauses.new_token(box.step_id), "fail_on_error": parsed.fail_on_error})
            box.remember(**decided)
            child_id = decided["child_id"]
        try:
            child = self.store.get_execution(child_id)
        except NotFound:
            namespace, flow_id = self.catalog.resolve_ref(parsed.flow, run.flow.namespace)
            try:
                await self.start(
                    f"{namespace}.{flow_id}", parsed.inputs, labels=parsed.labels,
                    parent_id=run.id if parsed.wait else None, parent_path=box.path,
                    execution_id=child_id, enqueue=not parsed.wait or parsed.distributed,
                    trigger={"type": "subflow", "parent_execution_id": run.id, "parent_flow": run.flow.key,
                             "depth": depth},
                )
            except NotFound:
                raise HubError(
                    f"subflow {namespace}.{flow_id} not found; deploy it (hub run --flows DIR, or the API) first"
                ) from None
            child = self.store.get_execution(child_id)
        if not parsed.wait:
            return {"execution_id": child_id, "state": child["state"]}
        if not parsed.distributed and child["state"] not in TERMINAL and child["state"] != State.PAUSED:
            child = await self.run(child_id)  # in process: the child runs to its end (or pause) here
        if child["state"] not in TERMINAL:  # distributed, or paused: its end completes this step
            return await self._pause_container(run, box, None)
        output, error = subflow_outcome(child, parsed.fail_on_error)
        if error is not None:
            raise HubError(error["message"])
        return output

    async def _wait(self, run: Run, task: Task, frame: Frame, box: Container) -> Any:
        if "until" not in box.data:
            params = self._config(task, frame)
            if params.until:
                try:
                    until = datetime.fromisoformat(params.until.replace("Z", "+00:00")).timestamp()
                except ValueError:
                    raise InvalidParameters(
                        f"parameters of {task.id} after rendering: until: {params.until!r} is not an ISO 8601 "
                        "date-time such as 2026-01-31T09:00:00Z"
                    ) from None
            elif params.duration is not None:
                until = self.clock.time() + params.duration
            else:
                raise HubError(f"{task.id}: give 'duration' or 'until'")
            box.data["until"] = until
            if until - self.clock.time() <= SHORT_WAIT:
                box.remember()
        remaining = box.data["until"] - self.clock.time()
        if remaining > SHORT_WAIT:
            # a long wait pauses, holding a resume token: when its time comes the engine ends it
            # through the token (engine.complete) — or anyone holding the token ends it sooner
            box.data.setdefault(pauses.TOKEN_KEY, pauses.new_token(box.step_id))
            box.data.setdefault("paused_at", self.clock.time())
            return await self._pause_container(run, box, box.data["until"])
        await self.clock.sleep(max(0.0, remaining))
        return {"waited_until": box.data["until"], "waited": format_duration(max(0.0, remaining))}

    async def _pause_container(self, run: Run, box: Container, resume_at: float | None) -> Any:
        """Pause a control-flow step that waits for the outside (a timer, a child execution): its
        row PAUSED with its data (and resume token), committed (in a thread on a server database),
        the execution paused by PauseSignal — unless the step was completed meanwhile: then its
        output (or its error, raised)."""
        answered = await self.write(run, pauses.pause_step, self.store, box.step_id, box.data)
        if answered is None:
            run.paused_steps.append(box.step_id)
            raise PauseSignal(box.path, resume_at)
        if answered["state"] != State.SUCCESS:
            error = answered.get("error") or {}
            raise HubError(str(error.get("message") or f"step {box.task.id} ended {answered['state']}"))
        return self.store.load_output(answered)


def _earliest(pauses: list[Any]) -> Any:
    """Several branches paused: wake the execution for the first timer any of them set."""
    timed = [p for p in pauses if p.resume_at is not None]
    return min(timed, key=lambda p: p.resume_at) if timed else pauses[0]


def wait_output(data: dict[str, Any]) -> dict[str, Any]:
    """The output of a long ``wait`` ended when its time came (from its step's data)."""
    until = float(data["until"])
    return {"waited_until": until, "waited": format_duration(max(0.0, until - float(data.get("paused_at", until))))}
