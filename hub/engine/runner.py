"""The runner: walks a flow, checkpoints every step, and never talks to the outside itself.

An execution is replayed from its step runs: a step whose newest run is committed (SUCCESS,
WARNING, SKIPPED) is not run again, its stored output is used. So a process killed mid-flow
loses nothing: the next run of the same execution continues after the last committed step, and
only the step that was in flight runs again (at-least-once; tasks get an idempotency key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy.exc
from pydantic_core import to_jsonable_python

from hub.engine import control, fanout, leaf, pauses
from hub.engine.catalog import FlowCatalog
from hub.engine.clock import Clock
from hub.engine.frame import Frame
from hub.engine.inputs import check_inputs
from hub.engine.queue import LocalQueue, Queue
from hub.engine.run import (
    Middleware,
    PauseSignal,
    Run,
    StepCall,
    StepFailed,
    StepLog,
    bind_execution,
    bind_step,
    step_event,
)
from hub.engine.starts import Starts
from hub.engine.states import COMMITTED, TERMINAL, State
from hub.errors import (
    ExpressionError,
    FlowError,
    HubError,
    NotFound,
    TaskError,
)
from hub.flow.durations import format_duration
from hub.flow.expressions import Expressions, Scope, expressions
from hub.flow.models import Flow, Task, walk_tasks
from hub.flow.secrets import Secrets
from hub.flow.yamlpos import UNSTORABLE
from hub.settings import HubSettings
from hub.store.store import AlongWrite, Store, owner_is_alive, this_owner
from hub.tasks.registry import Registry, default_registry

log = logging.getLogger(__name__)
_LIVE = (State.CREATED, State.QUEUED, State.RUNNING, State.PAUSED, State.KILLING)  # what kill reaches

Listener = Callable[[dict[str, Any]], None]
STALE_HEARTBEAT = 60.0
# failures of the database connection, not of the execution: it is left RUNNING and resumed later
TRANSIENT = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError, OSError)


def _storable(text: str) -> str:
    """``text`` with the characters a database refuses (NUL, lone surrogates) spelled as escapes."""
    return UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class Engine:
    """Starts, runs, resumes, restarts and kills executions.

    The same engine serves the CLI, the server and the workers; only the :class:`Queue` differs.
    """

    def __init__(
        self,
        store: Store,
        settings: HubSettings | None = None,
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        services: dict[str, Any] | None = None,
        rng: random.Random | None = None,
        owner: str | None = None,
    ):
        self.store = store
        self.settings = settings or HubSettings()
        self.registry = registry or default_registry()
        self.clock = clock or Clock()
        self.services = services if services is not None else {}
        self.rng = rng or random.Random()
        self.owner = owner or this_owner()
        self.catalog = FlowCatalog(store, self.registry)
        self.expr: Expressions = expressions()  # the process's one: flows loaded anywhere are compiled there
        self.expr.cache.resize(self.settings.expression_cache_size)
        self.secrets = Secrets(self.settings.resolved_secrets_file())
        self.listeners: list[Listener] = []
        self.middleware: list[Middleware] = []
        # run by resume_interrupted: parts of the hub that can find executions to continue
        # (e.g. approvals decided while no process was there to resume them)
        self.sweepers: list[Callable[[], Awaitable[list[str]]]] = []
        self.queue: Queue = LocalQueue(self, self.settings.max_concurrency)
        self.starts = Starts(store, self._submit_all)
        self._running: dict[str, asyncio.Task[Any]] = {}
        # executions started by this engine: which flow revision they run (saves a read when they
        # are run here)
        self._hints: dict[str, tuple[str, str, int]] = {}
        self._claimed: dict[str, dict[str, Any]] = {}  # started with claim=True, to be run here
        self._orphans: set[asyncio.Task[Any]] = set()  # claimed starts whose caller went away

    # -- events ------------------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                log.exception("event listener failed")

    # -- starting ----------------------------------------------------------------------------------

    def deploy(self, flow: Flow) -> int:
        return self.catalog.save(flow)

    async def start(
        self,
        flow: Flow | str,
        inputs: dict[str, Any] | None = None,
        *,
        labels: dict[str, Any] | None = None,
        trigger: dict[str, Any] | None = None,
        parent_id: str | None = None,
        parent_path: str | None = None,
        execution_id: str | None = None,
        enqueue: bool = True,
        revision: int | None = None,
        claim: bool = False,
        along: AlongWrite | None = None,
    ) -> str:
        """Create an execution (inputs checked) and queue it; returns its id.

        ``along`` is written in the transaction that inserts the execution (a webhook's
        idempotency claim): both are committed or neither; what it raises ends the start.

        ``flow`` is a reference (``namespace.id``: its newest revision, refused when disabled in
        its file or through the API) or a parsed flow: saved as a revision unless ``revision`` says
        which stored revision it already is (the API resolved it, so no lookup is repeated).

        ``claim`` (with ``enqueue=False``, for a caller that runs it here at once): the execution
        is created RUNNING and owned by this process, and :meth:`run` starts from the row it was
        created with instead of claiming it in a second statement. A flow with a concurrency limit
        is created QUEUED as usual (its start goes through the limit)."""
        if isinstance(flow, str):
            namespace, flow_id = self.catalog.resolve_ref(flow, "default")
            revision, flow, disabled = self.catalog.latest(namespace, flow_id)
        else:
            if revision is None:
                revision = self.catalog.save(flow)
            disabled = flow.disabled
        if disabled:
            raise HubError(f"flow {flow.key} is disabled; enable it before starting executions")
        checked = check_inputs(flow, inputs or {})
        claim = claim and not enqueue and flow.concurrency is None
        row = self.store.execution_row(
            namespace=flow.namespace,
            flow_id=flow.id,
            revision=revision,
            inputs=checked,
            state=State.RUNNING if claim else State.QUEUED,
            labels={**flow.labels, **(labels or {})},
            trigger=trigger,
            parent_id=parent_id,
            parent_path=parent_path,
            execution_id=execution_id,
        )
        execution_id = str(row["id"])
        if claim:
            row.update(owner=self.owner, heartbeat_at=row["created_at"], started_at=row["created_at"])
            created = asyncio.ensure_future(self.starts.create(row, False, along))
            try:
                await asyncio.shield(created)
            except asyncio.CancelledError:
                # the caller gave up while the row was being written: once it is, it is accepted
                # work owned by this process, which nobody else would take — run it here
                created.add_done_callback(lambda done: self._run_orphan(done, execution_id, row))
                raise
            self._claimed[execution_id] = self.store.full_execution_row(row)
            return execution_id
        if len(self._hints) > 10_000:  # started here but never run here (another process took them)
            self._hints.clear()
        hinted = execution_id not in self._hints  # (a duplicate id must not change another's hint)
        if hinted:
            self._hints[execution_id] = (flow.namespace, flow.id, revision)
        try:
            # durable (and queued) when this returns; concurrent starts share one commit
            await self.starts.create(row, enqueue, along)
        except BaseException:
            if hinted:
                self._hints.pop(execution_id, None)
            raise
        self.emit({"event": "execution", "execution_id": execution_id, "state": State.QUEUED, "flow": flow.key})
        return execution_id

    def _run_orphan(self, created: asyncio.Future[Any], execution_id: str, row: dict[str, Any]) -> None:
        if created.cancelled() or created.exception() is not None:
            return  # not written: nothing was accepted
        self._claimed[execution_id] = self.store.full_execution_row(row)
        task = asyncio.get_running_loop().create_task(self.run(execution_id), name=f"orphan {execution_id}")
        self._orphans.add(task)
        task.add_done_callback(self._orphans.discard)

    async def _submit_all(self, execution_ids: list[str]) -> None:
        many = getattr(self.queue, "submit_many", None)
        if many is not None:
            await many(execution_ids, hints={i: self._hints[i] for i in execution_ids if i in self._hints})
            return
        for execution_id in execution_ids:
            await self.queue.submit(execution_id)

    async def execute(self, flow: Flow | str, inputs: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """Start an execution and run it here, to its end (or pause); returns the execution row."""
        execution_id = await self.start(flow, inputs, enqueue=False, claim=True, **kw)
        return await self.run(execution_id)

    # -- running -----------------------------------------------------------------------------------

    async def run(self, execution_id: str, flow_hint: tuple[str, str, int] | None = None) -> dict[str, Any]:
        """Run (or continue) one execution in this process until it ends or pauses."""
        created = self._claimed.pop(execution_id, None)
        if created is not None:  # started here with claim=True: created RUNNING, owned by us
            return await self._run_owned(execution_id, (created, True))
        claimed = await self._claim_fast(execution_id, flow_hint or self._hints.pop(execution_id, None))
        if claimed is not None:
            return await self._run_owned(execution_id, claimed)
        execution = self.store.get_execution(execution_id)
        if execution["state"] in TERMINAL:
            return execution
        if execution["state"] == State.KILLING:
            return self._killed(execution_id)
        previous = execution["owner"]
        expected = {None, self.owner}
        if previous and previous != self.owner and self._owner_gone(execution):
            expected.add(previous)
        if not self.store.claim_execution(execution_id, self.owner, expected):
            log.info("execution %s is owned by %s; not running it here", execution_id, previous)
            return self.store.get_execution(execution_id)
        return await self._run_owned(execution_id, None)

    async def _claim_fast(
        self, execution_id: str, flow_hint: tuple[str, str, int] | None
    ) -> tuple[dict[str, Any], bool] | None:
        """Claim (and start, when the flow is known to have no concurrency limit) in one statement."""
        flow = self.catalog.cached(*flow_hint) if flow_hint is not None else None
        start = flow is not None and flow.concurrency is None
        return await self.db(self.store.claim_fresh, execution_id, self.owner, start)  # type: ignore[no-any-return]

    async def db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A store call on the execution's main path. On a server database it runs in a thread,
        so the commit waits of many executions overlap (group commit) instead of queueing on the
        event loop; SQLite's calls take microseconds and run inline."""
        if self.store.is_sqlite:
            return fn(*args, **kwargs)
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _run_owned(self, execution_id: str, claimed: tuple[dict[str, Any], bool] | None) -> dict[str, Any]:
        task = asyncio.current_task()
        if task is not None:
            self._running[execution_id] = task
        try:
            return await self._run_claimed(execution_id, claimed)
        except asyncio.CancelledError:
            current = self.store.get_execution(execution_id)
            if current["state"] in (State.KILLING, State.RUNNING, State.QUEUED):
                self._killed(execution_id)
            raise
        except TRANSIENT:
            raise  # the database is away: the execution stays RUNNING and is picked up again
        except Exception as exc:
            return await self._crashed(execution_id, exc)
        finally:
            self._running.pop(execution_id, None)

    async def _crashed(self, execution_id: str, exc: Exception) -> dict[str, Any]:
        """End an execution the engine itself failed on (a bug, or data the database refuses):
        FAILED with the error, instead of RUNNING and crashed again by every process that resumes it."""
        log.exception("execution %s crashed in the engine; it ends FAILED", execution_id)
        cause = exc.orig if isinstance(exc, sqlalchemy.exc.StatementError) and exc.orig is not None else exc
        message = f"the engine failed on this execution: {type(cause).__name__}: {cause}"
        error = {"type": "EngineError", "message": _storable(message), "retryable": False}
        self.store.update_execution(
            execution_id, state=State.FAILED, ended_at=time.time(), owner=None, resume_at=None, error=error
        )
        self.store.end_open_steps(execution_id, State.FAILED)
        execution = self.store.get_execution(execution_id)
        self.emit({"event": "execution", "execution_id": execution_id, "state": State.FAILED, "error": error})
        with contextlib.suppress(HubError):  # (its flow did load, or it would not have run)
            _, flow = self.catalog.get(execution["namespace"], execution["flow_id"], execution["revision"])
            await self._after_end(execution, flow)
        return execution

    def _owner_gone(self, execution: dict[str, Any]) -> bool:
        alive = owner_is_alive(execution["owner"])
        if alive is None:
            beat = execution["heartbeat_at"] or 0
            return time.time() - beat > STALE_HEARTBEAT
        return not alive

    async def _run_claimed(
        self, execution_id: str, claimed: tuple[dict[str, Any], bool] | None = None
    ) -> dict[str, Any]:
        if claimed is not None:
            execution, first_run = claimed
        else:
            execution, first_run = self.store.get_execution(execution_id), False
        try:
            _, flow = self.catalog.get(execution["namespace"], execution["flow_id"], execution["revision"])
        except (NotFound, FlowError) as exc:  # its revision is gone, or no longer loads here
            return self._unrunnable(execution, exc)
        if execution["state"] != State.RUNNING:
            limit = flow.concurrency.limit if flow.concurrency and not fanout.is_iteration(execution) else None
            started = await self.db(self.store.try_start, execution_id, flow.namespace, flow.id, limit)
            if started is None:
                assert flow.concurrency is not None
                return self._over_limit(execution, flow)
            execution = started
        run = Run(execution, flow, {} if first_run else self._replayable_steps(execution, flow))
        self.emit({"event": "execution", "execution_id": execution_id, "state": State.RUNNING, "flow": flow.key})

        async def walk() -> dict[str, Any]:
            return await self._walk_flow(run)

        call: Callable[[], Awaitable[dict[str, Any]]] = walk

        for layer in reversed(self.middleware):
            call = bind_execution(layer, run, call)
        return await call()

    async def _walk_flow(self, run: Run) -> dict[str, Any]:
        if fanout.is_iteration(run.execution):  # one iteration of a distributed for_each
            return await fanout.walk_iteration(self, run)
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
            self.flush(run).update_execution(execution_id, state=State.PAUSED, resume_at=pause.resume_at, owner=None)
            self.emit({"event": "execution", "execution_id": execution_id, "state": State.PAUSED, "flow": flow.key})
            if pauses.completed_meanwhile(self.store, run.paused_steps):  # answered while it paused
                await self._wake(execution_id)
                return self.store.get_execution(execution_id)
            if pause.resume_at is not None:
                await self.queue.submit(execution_id, delay=max(0.0, pause.resume_at - self.clock.time()))
            return self.store.get_execution(execution_id)
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

    def _over_limit(self, execution: dict[str, Any], flow: Flow) -> dict[str, Any]:
        assert flow.concurrency is not None
        behavior = flow.concurrency.behavior
        if behavior == "queue":
            self.store.update_execution(execution["id"], state=State.QUEUED, owner=None)
            return self.store.get_execution(execution["id"])
        message = f"flow {flow.key} already has {flow.concurrency.limit} running execution(s) (concurrency limit)"
        state = State.CANCELLED if behavior == "cancel" else State.FAILED
        now = time.time()
        self.store.update_execution(
            execution["id"],
            state=state,
            owner=None,
            ended_at=now,
            error={"type": "ConcurrencyLimit", "message": message, "retryable": False},
        )
        self.emit({"event": "execution", "execution_id": execution["id"], "state": state, "flow": flow.key})
        return self.store.get_execution(execution["id"])

    async def finish(
        self, run: Run, state: State, outputs: Any, error: dict[str, Any] | None
    ) -> dict[str, Any]:
        end = {"state": state, "outputs": outputs, "error": error, "ended_at": time.time(), "owner": None,
               "resume_at": None, **run.row_values}
        contexts, run.step_contexts = run.step_contexts, []
        row = await self.db(self.store.write_batch, run.pending_steps, run.pending_logs, (run.id, end), contexts)
        run.pending_steps, run.pending_logs = [], []
        assert row is not None
        self.emit(
            {"event": "execution", "execution_id": run.id, "state": state, "flow": run.flow.key, "error": error}
        )
        await self._after_end(run.execution, run.flow)
        return row

    async def _after_end(self, execution: dict[str, Any], flow: Flow) -> None:
        if flow.concurrency:
            for queued in self.store.next_queued(flow.namespace, flow.id, flow.concurrency.limit):
                await self.queue.submit(queued)
        parent_id = execution.get("parent_id")
        if parent_id:
            try:
                parent = self.store.get_execution(parent_id)
            except NotFound:
                return
            if parent["state"] == State.PAUSED:
                await self.queue.submit(parent_id)

    def _replayable_steps(self, execution: dict[str, Any], flow: Flow) -> dict[str, dict[str, Any]]:
        """Newest run of each step; stale in-flight leaf runs are closed as interrupted."""
        steps = self.store.latest_steps(execution["id"])
        handler_ids = {t.id for t in walk_tasks([*flow.errors, *flow.finally_])}
        started = execution["started_at"] or 0
        for path, row in list(steps.items()):
            kind = self.registry.get(row["task_type"])
            if row["task_id"] in handler_ids and row["started_at"] < started:
                del steps[path]  # handlers run anew after a restart
                continue
            if row["state"] == State.RUNNING and not getattr(kind, "control", False):
                error = {
                    "type": "Interrupted",
                    "message": "the process running this step stopped before it finished; running it again",
                    "retryable": True,
                }
                self.store.finish_step(row["id"], State.FAILED, error=error)
                row = {**row, "state": State.FAILED, "error": error}
                steps[path] = row
        return steps

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

    # -- walking -----------------------------------------------------------------------------------

    async def run_tasks(self, run: Run, tasks: list[Task], frame: Frame) -> None:
        for task in tasks:
            await self.run_task(run, task, frame)

    async def run_task(self, run: Run, task: Task, frame: Frame) -> None:
        path = frame.path(task.id)
        row = run.steps.get(path)
        if row is not None and row["state"] in COMMITTED:
            frame.outputs[task.id] = self.store.load_output(row)
            if (row.get("data") or {}).get(pauses.COMPLETED_KEY) is True:
                await self._observe_completion(run, task, path, row, frame.outputs[task.id])
            if row["state"] == State.WARNING:
                run.warning = True
            control.expose_children(task, frame, frame.outputs[task.id])
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
            await control.run_control(self, run, task, frame, path, row)
        else:
            await leaf.run_leaf(self, run, task, kind, frame, path)

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

    def fail_record(self, run: Run, task: Task, path: str, error: dict[str, Any]) -> None:
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

    # -- writes ----------------------------------------------------------------------------------

    def flush(self, run: Run) -> Store:
        """Write what the run holds back; returns the store for the write that follows."""
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

    def hold(self, run: Run, *args: Any, **values: Any) -> None:
        """A finished run of a pure step, written with the next write (see :class:`Run`)."""
        run.pending_steps.append(self.store.step_values(*args, **values))
        if len(run.pending_steps) >= 500:
            self.flush(run)

    def wrap_step(self, info: StepCall, instance: Any, pure: bool = False) -> Callable[[], Awaitable[Any]]:
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

    # -- resume / restart / kill -------------------------------------------------------------------

    async def resume_interrupted(self, run_now: bool = True) -> list[str]:
        """Continue every execution whose process died (and due paused ones); returns their ids."""
        resumed: list[str] = []
        for execution in self.store.unfinished_executions():
            owner = execution["owner"]
            if owner and owner != self.owner and not self._owner_gone(execution):
                continue
            resumed.append(execution["id"])
        resumed.extend(self.store.due_paused(self.clock.time()))
        for execution_id in resumed:
            try:
                if run_now:
                    await self.run(execution_id)
                else:
                    await self.queue.submit(execution_id)
            except Exception:  # one execution that cannot be continued does not stop the others
                log.exception("execution %s could not be resumed", execution_id)
        for sweeper in self.sweepers:
            try:
                resumed.extend(await sweeper())
            except Exception:
                log.exception("sweeper %r failed", sweeper)
        return resumed

    async def resume(self, execution_id: str) -> None:
        """Queue a PAUSED execution again (after a decision, a child ending, or its timer)."""
        if not await self._wake(execution_id):
            execution = self.store.get_execution(execution_id)
            raise HubError(f"execution {execution_id} is {execution['state']}, not PAUSED")

    async def _wake(self, execution_id: str) -> bool:
        """PAUSED -> RUNNING (a compare-and-set: one caller wins) and queued; False if not PAUSED."""
        if not await self.db(pauses.claim_paused, self.store, execution_id):
            return False
        await self.queue.submit(execution_id)
        return True

    async def complete(self, token: str, output: Any = None, *, error: dict[str, Any] | None = None) -> bool:
        """End the paused step holding ``token`` with ``output`` (or ``error``) and continue its
        execution, exactly once: True for the call that ended it (see :mod:`hub.engine.pauses`)."""
        return await pauses.complete(self, token, output, error=error)

    async def restart(self, execution_id: str, run_now: bool = False) -> dict[str, Any]:
        """Run a FAILED (or KILLED) execution again from its failed step, keeping earlier outputs."""
        execution = self.store.get_execution(execution_id)
        if execution["state"] not in (State.FAILED, State.KILLED, State.CANCELLED):
            raise HubError(
                f"execution {execution_id} is {execution['state']}; only FAILED, KILLED or CANCELLED "
                "executions can be restarted"
            )
        self.store.update_execution(
            execution_id, state=State.QUEUED, error=None, outputs=None, ended_at=None,
            started_at=time.time(), owner=None,
        )
        if run_now:
            return await self.run(execution_id)
        await self.queue.submit(execution_id)
        return self.store.get_execution(execution_id)

    async def kill(self, execution_id: str) -> dict[str, Any]:
        """Stop an execution: cancel it here, or mark it KILLING for the process that runs it;
        then the same for its children (subflows it waits for, distributed for_each iterations)."""
        killed = await self._kill_one(execution_id)
        await self._kill_children(execution_id)
        return killed if killed["state"] in TERMINAL else self.store.get_execution(execution_id)

    async def _kill_children(self, parent_id: str) -> None:
        # breadth-first, each execution once (a cycle of rows cannot loop)
        seen, todo = {parent_id}, [parent_id]
        while todo:
            current = todo.pop()
            for child in self.store.list_executions(parent_id=current, states=_LIVE, limit=10_000):
                if child["id"] not in seen:
                    seen.add(child["id"])
                    await self._kill_one(child["id"])
                    todo.append(child["id"])

    async def _kill_one(self, execution_id: str) -> dict[str, Any]:
        execution = self.store.get_execution(execution_id)
        if execution["state"] in TERMINAL:
            return execution
        # started here with claim=True and not run yet: run() must not start from the row it was
        # created with, but read it (and find it KILLED)
        self._claimed.pop(execution_id, None)
        task = self._running.get(execution_id)
        if task is not None and not task.done():
            self.store.update_execution(execution_id, state=State.KILLING)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            return self.store.get_execution(execution_id)
        owner = execution["owner"]
        if execution["state"] == State.RUNNING and owner and owner != self.owner and not self._owner_gone(execution):
            self.store.update_execution(execution_id, state=State.KILLING)
            return self.store.get_execution(execution_id)
        return self._killed(execution_id)

    def _unrunnable(self, execution: dict[str, Any], exc: HubError) -> dict[str, Any]:
        """End an execution whose flow cannot be had: FAILED, saying why (not retried forever)."""
        key = f"{execution['namespace']}.{execution['flow_id']}@{execution['revision']}"
        log.error("execution %s cannot run: flow %s: %s", execution["id"], key, exc)
        error = {"type": "FlowUnavailable", "message": f"flow {key} cannot be loaded: {exc}", "retryable": False}
        self.store.update_execution(execution["id"], state=State.FAILED, ended_at=time.time(), owner=None, error=error)
        self.emit({"event": "execution", "execution_id": execution["id"], "state": State.FAILED, "error": error})
        return self.store.get_execution(execution["id"])

    def _killed(self, execution_id: str) -> dict[str, Any]:
        self.store.update_execution(
            execution_id, state=State.KILLED, ended_at=time.time(), owner=None,
            error={"type": "Killed", "message": "the execution was killed", "retryable": False},
        )
        self.store.end_open_steps(execution_id, State.KILLED)
        self.emit({"event": "execution", "execution_id": execution_id, "state": State.KILLED})
        return self.store.get_execution(execution_id)

    async def heartbeat_loop(self, interval: float = 5.0) -> None:
        """Keep this process's executions marked alive and notice kills asked elsewhere."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.store.heartbeat(self.owner)
                running = dict(self._running)
                for execution_id in self.store.killing(running):
                    running[execution_id].cancel()
            except Exception:
                log.exception("heartbeat failed")


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


__all__ = [
    "Engine", "Middleware", "PauseSignal", "Run", "StepCall", "StepFailed", "StepLog", "TaskError",
]
