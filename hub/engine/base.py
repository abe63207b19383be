"""What every part of the step walker shares: the engine's parts, its events, how a run's
writes reach the store, and the scope every expression of an execution sees.

The walker is one class, :class:`hub.engine.walker.Walker`, made of parts that each live in a
module of their own and build on this one: leaf steps (:mod:`hub.engine.leaf`), control flow
(:mod:`hub.engine.control`), distributed fan-out (:mod:`hub.engine.fanout`). The
:class:`~hub.engine.runner.Engine` is the walker with the life cycle of executions around it
(start, claim, resume, restart, kill). The methods a part uses of another are declared here;
the few the life cycle provides (starting, running and restarting another execution, for
subflows and fan-out) are abstract here.
"""

from __future__ import annotations

import abc
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hub.engine import pauses
from hub.engine.batches import DB_THREADS, Batched, in_thread
from hub.engine.catalog import FlowCatalog
from hub.engine.clock import Clock
from hub.engine.frame import Frame
from hub.engine.queue import Queue
from hub.engine.run import Middleware, PauseSignal, Run, StepCall, StepFailed, bind_step, step_event
from hub.engine.states import State
from hub.engine.timers import StartTimer
from hub.errors import ExpressionError, HubError, NotFound
from hub.flow.expressions import Expressions, Scope, expressions
from hub.flow.models import Flow, Task
from hub.flow.secrets import Secrets
from hub.settings import HubSettings
from hub.store.json_text import as_stored
from hub.store.store import EndWrite, Store
from hub.tasks.registry import Registry, default_registry

if TYPE_CHECKING:
    from hub.store.store import AlongWrite

log = logging.getLogger(__name__)

Listener = Callable[[dict[str, Any]], None]

HELD_ROWS = 500
"""Finished runs of pure steps a run holds back at most (see :meth:`WalkerBase.hold`)."""


class WalkerBase(abc.ABC):
    """The state and the primitive writes the walker's parts share."""

    queue: Queue

    def __init__(
        self,
        store: Store,
        settings: HubSettings | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        services: dict[str, Any] | None = None,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.settings = settings or HubSettings()
        self.registry = registry or default_registry()
        self.clock = clock or Clock()
        self.services = services if services is not None else {}
        self.rng = rng or random.Random()
        self.catalog = FlowCatalog(store, self.registry)
        self.expr: Expressions = expressions()  # the process's one: flows loaded anywhere are compiled there
        self.expr.cache.resize(self.settings.expression_cache_size)
        self.secrets = Secrets(self.settings.resolved_secrets_file())
        self.listeners: list[Listener] = []
        self.middleware: list[Middleware] = []
        self.start_timer: StartTimer | None = None  # the loop's checkpoints not yet due (hub.engine.leaf)
        self.ends: Batched[EndWrite, dict[str, Any]] = Batched(
            in_thread(store.end_executions), key=lambda end: end.execution_id
        )

    # -- what the life cycle provides ---------------------------------------------------------

    @abc.abstractmethod
    async def start(
        self, flow: Flow | str, inputs: dict[str, Any] | None = None, *, labels: dict[str, Any] | None = None,
        trigger: dict[str, Any] | None = None, parent_id: str | None = None, parent_path: str | None = None,
        execution_id: str | None = None, enqueue: bool = True, revision: int | None = None, claim: bool = False,
        along: AlongWrite | None = None,
    ) -> str:
        """Create an execution and queue it (a subflow's child)."""

    @abc.abstractmethod
    async def run(self, execution_id: str, flow_hint: tuple[str, str, int] | None = None) -> dict[str, Any]:
        """Run (or continue) an execution in this process (a subflow's child, in process)."""

    @abc.abstractmethod
    async def restart(self, execution_id: str, run_now: bool = False) -> dict[str, Any]:
        """Run a failed execution again (a failed iteration of a restarted fan-out)."""

    @abc.abstractmethod
    async def run_task(self, run: Run, task: Task, frame: Frame) -> None:
        """Run one step of any kind (see :class:`hub.engine.walker.Walker`)."""

    async def run_tasks(self, run: Run, tasks: list[Task], frame: Frame) -> None:
        for task in tasks:
            await self.run_task(run, task, frame)

    # -- events ------------------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")

    # -- writes ------------------------------------------------------------------------------------

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call on the execution's main path. On a server database it runs in a thread,
        so the commit waits of many executions overlap (group commit) instead of queueing on the
        event loop; SQLite's calls take microseconds and run inline."""
        if self.store.is_sqlite:
            return fn(*args, **kwargs)
        return await DB_THREADS.run(fn, *args, **kwargs)

    def flush(self, run: Run) -> Store:
        """Write what the run holds back, here (on the loop); returns the store for the write that
        follows. For the writes of a step that are made where nothing can be awaited (a control
        step's row, a task's log line, a resume token); the walk awaits :meth:`write`."""
        if run.pending_steps or run.pending_logs:
            self.store.write_batch(run.pending_steps, run.pending_logs)
            run.pending_steps = []
            run.pending_logs = []
        return self.store

    async def write(self, run: Run, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """What the run holds back, then one store write — in a thread on a server database (see
        :meth:`db`). The held-back rows are taken here, on the loop, so a parallel branch adding
        one meanwhile is not lost."""
        steps, logs = run.pending_steps, run.pending_logs
        run.pending_steps, run.pending_logs = [], []

        def both() -> Any:
            if steps or logs:
                self.store.write_batch(steps, logs)
            return fn(*args, **kwargs)

        return await self.db(both)

    async def write_held(self, run: Run) -> None:
        """What the run holds back, written now (in a thread on a server database: :meth:`db`),
        taken on the loop as in :meth:`write`."""
        steps, logs = run.pending_steps, run.pending_logs
        run.pending_steps, run.pending_logs = [], []
        if steps or logs:
            await self.db(self.store.write_batch, steps, logs)

    def hold(self, run: Run, *args: Any, **values: Any) -> None:
        """A finished run of a pure step, written with the next write (see :class:`Run`), or
        before the next step once the run holds :data:`HELD_ROWS` (see ``Walker.run_task``)."""
        run.pending_steps.append(self.store.step_values(*args, **values))

    def fail_record(self, run: Run, task: Task, path: str, error: dict[str, Any]) -> None:
        """Record a step that failed before it could run (its condition or parameters): raises
        StepFailed unless the step may fail."""
        error = run.redactor(error)
        now = time.time()
        attempt = run.attempts.get(path, 0) + 1
        run.attempts[path] = attempt
        state = State.WARNING if task.allow_failure else State.FAILED
        self.hold(run, run.id, path, task.id, task.type, attempt, state, error=error, started_at=now, ended_at=now)
        self.emit(step_event(run, task, path, state, attempt, 0.0, error))
        if not task.allow_failure:
            raise StepFailed(error, path, task.id)
        run.warning = True

    def wrap_step(self, info: StepCall, instance: Any, pure: bool = False) -> Callable[[], Awaitable[Any]]:
        """The task's ``run`` wrapped in the middleware (see :meth:`wrap`)."""

        async def call() -> Any:
            return await instance.run(info.ctx, info.params)

        return self.wrap(info, call, pure)

    def wrap(
        self, info: StepCall, call: Callable[[], Awaitable[Any]], pure: bool = False
    ) -> Callable[[], Awaitable[Any]]:
        """``call`` wrapped in every middleware's ``step`` (outermost first). A pure step skips
        the middleware that says it need not see them (``wraps_pure_steps = False``)."""
        for layer in reversed(self.middleware):
            if pure and not layer.wraps_pure_steps:
                continue
            call = bind_step(layer, info, call)
        return call

    # -- the end of a run ------------------------------------------------------------------------

    async def finish(self, run: Run, state: State, outputs: Any, error: dict[str, Any] | None) -> dict[str, Any]:
        """End the execution: its row, the steps the run holds back and their trace contexts in one
        transaction (on a server database, one shared with the executions that end meanwhile:
        :mod:`hub.engine.batches`); then what waits for it (see :meth:`after_end`). Returns the
        ended row (the claimed row with what the end wrote, and the trace context as stored)."""
        now = time.time()
        end = {"state": state, "outputs": outputs, "error": error, "ended_at": now, "owner": None,
               "resume_at": None, "updated_at": now, **run.row_values}
        write = EndWrite(run.id, end, run.pending_steps, run.pending_logs, run.step_contexts)
        run.pending_steps, run.pending_logs, run.step_contexts = [], [], []
        if self.store.is_sqlite:
            read = self.store.write_batch(write.steps, write.logs, (run.id, end), write.contexts)
        else:  # with the ends of the executions that finish meanwhile: one transaction
            read = await self.ends(write)
        row = ended_row(run.execution, {**end, **(read or {})})
        self.emit(
            {"event": "execution", "execution_id": run.id, "state": state, "flow": run.flow.key, "error": error}
        )
        await self.after_end(row, run.flow)
        return row

    async def after_end(self, execution: dict[str, Any], flow: Flow) -> None:
        """An execution ended (``execution`` is its ended row): start the next one its flow's
        concurrency limit held back, and answer what waits for it — the subflow step of its
        parent, through the step's resume token (:meth:`complete`), or the distributed for_each
        that started it (woken to collect its children)."""
        if flow.concurrency:
            for queued in self.store.next_queued(flow.namespace, flow.id, flow.concurrency.limit):
                await self.queue.submit(queued)
        parent_id = execution.get("parent_id")
        if not parent_id:
            return
        if (execution.get("trigger") or {}).get("type") == "subflow" and await self._answer_parent(execution):
            return
        try:
            parent = self.store.get_execution(parent_id)
        except NotFound:
            return
        if parent["state"] == State.PAUSED:
            await self.queue.submit(parent_id)

    async def _answer_parent(self, execution: dict[str, Any]) -> bool:
        """End the parent's subflow step that waits for ``execution`` with its outcome; False when
        no such step holds a resume token (a parent paused by an older release, a child started by
        a leaf step)."""
        waiting = await self.db(pauses.waiting_step, self.store, execution["parent_id"], execution["parent_path"])
        if waiting is None or waiting.get("child_id") != execution["id"]:
            return False  # (a leaf step's child flow, an agent's: that step reads it when it runs again)
        output, error = subflow_outcome(execution, bool(waiting.get("fail_on_error", True)))
        await self.complete(waiting[pauses.TOKEN_KEY], output, error=error)
        return True

    async def complete(self, token: str, output: Any = None, *, error: dict[str, Any] | None = None) -> bool:
        """End the paused step holding ``token`` with ``output`` (or ``error``) and continue its
        execution, exactly once: True for the call that ended it (see :mod:`hub.engine.pauses`)."""
        ended = await self.db(pauses.end_step, self.store, token, output, error)
        if ended is None:
            return False
        execution_id, before = ended
        if before == State.PAUSED:
            await self.wake(execution_id)
        # RUNNING: the task is still pausing, or the walk has not yet written the execution PAUSED;
        # the walk sees the ended step (pause_step / completed_meanwhile) and goes on
        return True

    async def pause_execution(self, run: Run, pause: PauseSignal) -> dict[str, Any]:
        """Write the execution PAUSED (it holds no worker) and queue it again at the pause's
        ``resume_at``; returns its row. Shared by every walk (a flow's, a distributed iteration's):
        a step answered after it paused but before this write saw the execution RUNNING and did
        not wake it (:meth:`complete`), so the walk looks for such an answer and wakes itself —
        else the execution would stay PAUSED forever. The pause is committed before it is told."""
        await self.write(run, self.store.update_execution, run.id, state=State.PAUSED, resume_at=pause.resume_at,
                         owner=None)
        self.emit({"event": "execution", "execution_id": run.id, "state": State.PAUSED, "flow": run.flow.key})
        if await self.db(pauses.completed_meanwhile, self.store, run.paused_steps):  # answered while it paused
            await self.wake(run.id)
        elif pause.resume_at is not None:
            await self.queue.submit(run.id, delay=max(0.0, pause.resume_at - self.clock.time()))
        return await self.db(self.store.get_execution, run.id)  # type: ignore[no-any-return]

    async def wake(self, execution_id: str) -> bool:
        """PAUSED -> RUNNING (a compare-and-set: one caller wins) and queued; False if not PAUSED."""
        if not await self.db(pauses.claim_paused, self.store, execution_id):
            return False
        await self.queue.submit(execution_id)
        return True

    # -- scope -------------------------------------------------------------------------------------

    def base_scope(self, run: Run, **parts: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """What every expression of the execution sees; ``parts`` (``execution``, ``trigger``)
        replace the execution's own before the variables are rendered over them, once.

        Never raises: with it comes the (redacted) error of the first variable that failed to
        render, or None. The caller ends the execution FAILED with it, running no task; ``vars``
        holds the variables that did render (for the ``errors`` and ``finally`` handlers)."""
        execution = run.execution
        secret = run.redactor.secret_function(self.secrets)
        base: dict[str, Any] = {
            "inputs": Scope("inputs", dict(execution["inputs"] or {}), "input"),
            "execution": Scope(
                "execution",
                {
                    "id": execution["id"],
                    "flow": execution["flow_id"],
                    "namespace": execution["namespace"],
                    "revision": execution["revision"],
                    "labels": execution["labels"] or {},
                    "start_date": _iso(execution["started_at"] or execution["created_at"]),
                    "parent_id": execution["parent_id"],
                },
            ),
            "trigger": execution["trigger"] or {},
            "secret": secret,
        }
        base.update(parts)
        variables: dict[str, Any] = {}
        error: dict[str, Any] | None = None
        for name, value in run.flow.variables.items():
            try:
                variables[name] = self.expr.render(value, base, f"variables.{name}")
            except ExpressionError as exc:
                error = error or exc.to_dict()
        base["vars"] = Scope("vars", variables, "variable")
        return base, (run.redactor(error) if error is not None else None)


def ended_row(execution: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """An execution's row as ending it wrote it: ``values`` over the row it was claimed with, its
    JSON columns as reading them back would give them (lists for tuples, keys as strings)."""
    row = {**execution, **values}
    for column in ("outputs", "error"):
        if row.get(column) is not None:
            row[column] = as_stored(row[column])
    return row


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


FAILED_ENDS = (State.FAILED, State.KILLED, State.CANCELLED)


def subflow_outcome(child: dict[str, Any], fail_on_error: bool) -> tuple[Any, dict[str, Any] | None]:
    """A subflow step's output for its ended child execution, or its error (the child failed
    and the step fails with it)."""
    if child["state"] in FAILED_ENDS and fail_on_error:
        message = (child.get("error") or {}).get("message", "")
        error = HubError(f"subflow execution {child['id']} ended {child['state']}: {message}").to_dict()
        return None, error
    return {"execution_id": child["id"], "state": child["state"], "outputs": child["outputs"] or {}}, None
