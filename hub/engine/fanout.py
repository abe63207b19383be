"""Distributed fan-out: ``for_each`` with ``distributed: true`` (and subflows) as child jobs.

Each iteration becomes a child execution of the same flow revision, marked by its trigger
(``{"type": "for_each_iteration", ...}``): it walks only the loop's tasks, in a frame rebuilt
from a snapshot of what the parent's loop saw (outer outputs, item, vars, execution, trigger),
and its outputs are the iteration's ``{task id: output}``. Children are queued like any
execution, so they spread over every worker, and each one is as durable as any execution.

The parent pauses (it holds no worker) and is submitted again when a child ends (the engine's
usual wake-up of a paused parent, :meth:`~hub.engine.base.WalkerBase.after_end`). A child can
end in the short window between the parent's check and its pause; a re-check timer
(:data:`RECHECK`) covers that case.

The decisions are stored on the loop's step run before any child starts (their ids and the
scope snapshot), so a parent that is replayed creates no second set of children. The output
of the loop is the same list as the in-process loop gives, and the step paths inside each
child are the same (``notify[3]``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic_core import to_jsonable_python

from hub.engine.base import WalkerBase
from hub.engine.frame import NO_ITEM, Frame
from hub.engine.queue import LocalQueue
from hub.engine.run import PauseSignal, Run, StepFailed
from hub.engine.states import TERMINAL, State
from hub.errors import HubError, NotFound
from hub.flow.expressions import Scope
from hub.flow.models import Flow, Task
from hub.store.store import new_id

if TYPE_CHECKING:
    from hub.engine.container import Container

ITERATION = "for_each_iteration"
RECHECK = 2.0  # seconds: a waiting parent looks at its children at least this often
FAILED_STATES = (State.FAILED, State.KILLED, State.CANCELLED)


def is_iteration(execution: dict[str, Any]) -> bool:
    trigger = execution.get("trigger") or {}
    return isinstance(trigger, dict) and trigger.get("type") == ITERATION


class FanOut(WalkerBase):
    """The walker's part that runs a distributed for_each as child executions."""

    async def fan_out(
        self, run: Run, task: Task, frame: Frame, box: Container, items: list[Any], limit: int | None
    ) -> Any:
        """The parent side: create and queue the children (at most ``limit`` running at once), collect
        them when all have ended."""
        if box.data.get("failed"):  # the parent was restarted: run the failed iterations again
            for child_id in box.data.get("children", []):
                child = self._execution_or_none(child_id)
                if child is not None and child["state"] in FAILED_STATES:
                    await self.restart(child_id)
            box.remember(failed=False)
        if "children" not in box.data:
            box.remember(children=[new_id() for _ in items], scope=self._snapshot(run, frame))
        ids: list[str] = box.data["children"]
        children = {child_id: self._execution_or_none(child_id) for child_id in ids}
        in_flight = sum(1 for c in children.values() if c is not None and c["state"] not in TERMINAL)
        failed = [c for c in children.values() if c is not None and c["state"] in FAILED_STATES]
        if not failed:
            for index, child_id in enumerate(ids):
                if children[child_id] is not None:
                    continue
                if limit is not None and in_flight >= limit:
                    break
                if index >= len(items):
                    raise HubError(f"{task.id}.items changed length since the iterations were planned")
                children[child_id] = await self._start_child(run, task, box, index, items[index], child_id)
                in_flight += 1
        if failed:
            first = min(failed, key=lambda c: ids.index(c["id"]))
            error = dict(first.get("error") or {"type": "IterationFailed", "message": f"ended {first['state']}"})
            error.setdefault("message", f"iteration {first['id']} ended {first['state']}")
            error["iteration_execution_id"] = first["id"]
            box.remember(failed=True)
            raise StepFailed(error, error.get("path", box.path), error.get("task_id", task.id))
        if all(c is not None and c["state"] in TERMINAL for c in children.values()):
            results = []
            for child_id in ids:
                child = children[child_id]
                assert child is not None
                if child["state"] == State.WARNING:
                    run.warning = True
                results.append(child["outputs"] or {})
            return results
        self.wait_for_children(box)

    def wait_for_children(self, box: Container) -> None:
        """Pause the parent until a child wakes it, with one re-check timer armed at a time."""
        if isinstance(self.queue, LocalQueue):
            # in process, a child cannot end between the parent's check and its pause
            raise PauseSignal(box.path, None)
        now = self.clock.time()
        armed = box.data.get("recheck_at")
        if armed is not None and armed > now:
            raise PauseSignal(box.path, None)
        box.remember(recheck_at=now + RECHECK)
        raise PauseSignal(box.path, now + RECHECK)

    def _execution_or_none(self, execution_id: str) -> dict[str, Any] | None:
        try:
            return self.store.get_execution(execution_id)
        except NotFound:
            return None

    def _snapshot(self, run: Run, frame: Frame) -> str:
        """What the loop's tasks see besides ``item``/``index``, stored once as a blob."""
        scope: dict[str, Any] = {
            "outputs": frame.outputs.to_dict(),
            "suffix": frame.suffix,
            "execution": _plain(frame.base.get("execution")),
            "trigger": _plain(frame.base.get("trigger")),
        }
        if frame.item is not NO_ITEM:
            scope["item"], scope["index"] = frame.item, frame.index
        if frame.error is not None:
            scope["error"] = frame.error
        data = json.dumps(to_jsonable_python(scope, fallback=str), separators=(",", ":")).encode()
        return self.store.put_blob(data, execution_id=run.id)

    async def _start_child(self, run: Run, task: Task, box: Container, index: int, item: Any,
                           child_id: str) -> dict[str, Any]:
        execution = run.execution
        self.store.create_execution(
            namespace=run.flow.namespace,
            flow_id=run.flow.id,
            revision=execution["revision"],
            inputs=execution["inputs"] or {},
            state=State.QUEUED,
            labels=execution["labels"] or {},
            trigger={
                "type": ITERATION, "parent_execution_id": run.id, "path": box.path, "task_id": task.id,
                "index": index, "item": to_jsonable_python(item, fallback=str), "scope": box.data["scope"],
            },
            parent_id=run.id,
            parent_path=box.path,
            execution_id=child_id,
        )
        self.emit({"event": "execution", "execution_id": child_id, "state": State.QUEUED, "flow": run.flow.key})
        await self.queue.submit(child_id)
        return self.store.get_execution(child_id)

    async def walk_iteration(self, run: Run) -> dict[str, Any]:
        """The child side: run one iteration's tasks; the execution's outputs are their outputs."""
        trigger = run.execution["trigger"]
        loop = _find(run.flow, trigger["task_id"])
        scope = json.loads(self.store.get_blob(trigger["scope"]))
        # the parent's execution and trigger, under which the variables are rendered (once)
        base, error = self.base_scope(
            run, execution=Scope("execution", scope.get("execution") or {}), trigger=scope.get("trigger") or {}
        )
        outer = Frame(
            outputs=Scope("outputs", scope.get("outputs") or {}, "task"),
            suffix=scope.get("suffix", ""),
            item=scope.get("item", NO_ITEM),
            index=scope.get("index"),
            error=scope.get("error"),
            base=base,
        )
        frame = outer.iteration(trigger["index"], trigger["item"])
        state = State.FAILED
        try:
            if error is None:  # a variable that does not render fails the iteration before any task
                await self.run_tasks(run, loop.params["tasks"], frame)
                state = State.WARNING if run.warning else State.SUCCESS
        except StepFailed as failed:
            state, error = State.FAILED, failed.error
        except PauseSignal as pause:
            return await self.pause_execution(run, pause)
        outputs = None
        if error is None:
            outputs = run.redactor(to_jsonable_python(dict(frame.outputs.own()), fallback=str))
        return await self.finish(run, state, outputs, error)


def _plain(value: Any) -> Any:
    return value.to_dict() if isinstance(value, Scope) else value


def _find(flow: Flow, task_id: str) -> Task:
    task = flow.find(task_id)
    if task is None or task.type != "for_each":
        raise HubError(f"flow {flow.key} has no for_each task {task_id!r} (was the flow changed?)")
    return task
