"""The engine: the life cycle of executions around the step walker (:mod:`hub.engine.walker`).

Starts executions (inputs checked, durable before the call returns), claims them for one
process, runs them through the walker, resumes the interrupted and the paused, restarts the
failed, kills, and keeps this process's executions marked alive.
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

from hub.engine import pauses
from hub.engine.batches import Batched, in_thread
from hub.engine.clock import Clock
from hub.engine.control import wait_output
from hub.engine.fanout import is_iteration
from hub.engine.inputs import check_inputs
from hub.engine.queue import LocalQueue, Queue
from hub.engine.run import Middleware, PauseSignal, Run, StepCall, StepFailed, StepLog, bind_execution
from hub.engine.starts import Starts
from hub.engine.states import TERMINAL, State
from hub.engine.walker import Walker
from hub.errors import FlowError, HubError, NotFound, TaskError
from hub.flow.models import Flow, walk_tasks
from hub.flow.yamlpos import UNSTORABLE
from hub.settings import HubSettings
from hub.store.store import AlongWrite, Store, owner_is_alive, this_owner
from hub.tasks.registry import Registry

log = logging.getLogger(__name__)
_LIVE = (State.CREATED, State.QUEUED, State.RUNNING, State.PAUSED, State.KILLING)  # what kill reaches

STALE_HEARTBEAT = 60.0
# failures of the database connection, not of the execution: it is left RUNNING and resumed later
TRANSIENT = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError, OSError)


def _storable(text: str) -> str:
    """``text`` with the characters a database refuses (NUL, lone surrogates) spelled as escapes."""
    return UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


class Engine(Walker):
    """Starts, runs, resumes, restarts and kills executions (the step walker with the life cycle
    of executions around it).

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
        super().__init__(store, settings, registry=registry, clock=clock, services=services, rng=rng)
        self.owner = owner or this_owner()
        # run by resume_interrupted: parts of the hub that can find executions to continue
        # (e.g. approvals decided while no process was there to resume them)
        self.sweepers: list[Callable[[], Awaitable[list[str]]]] = []
        self.queue: Queue = LocalQueue(self, self.settings.max_concurrency)
        self.starts = Starts(store, self._submit_all)
        self.claims: Batched[tuple[str, bool], tuple[dict[str, Any], bool] | None] = Batched(
            in_thread(lambda requests: store.claim_fresh_many(requests, self.owner)), key=lambda request: request[0]
        )
        self._running: dict[str, asyncio.Task[Any]] = {}
        # executions started by this engine: which flow revision they run (saves a read when they
        # are run here)
        self._hints: dict[str, tuple[str, str, int]] = {}
        self._claimed: dict[str, dict[str, Any]] = {}  # started with claim=True, to be run here
        self._orphans: set[asyncio.Task[Any]] = set()  # claimed starts whose caller went away

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
        if execution["state"] == State.PAUSED:
            await self._end_due_waits(execution_id)
        previous = execution["owner"]
        expected = {None, self.owner}
        if previous and previous != self.owner and self._owner_gone(execution):
            expected.add(previous)
        if not self.store.claim_execution(execution_id, self.owner, expected):
            log.info("execution %s is owned by %s; not running it here", execution_id, previous)
            return self.store.get_execution(execution_id)
        return await self._run_owned(execution_id, None)

    async def _end_due_waits(self, execution_id: str) -> None:
        """End every long ``wait`` of a paused execution whose time has come, through its resume
        token (a compare-and-set: exactly once, whichever process's timer fires first); the run
        that follows replays it as ended instead of running it again."""
        now = self.clock.time()
        for row in await self.db(pauses.paused_steps, self.store, execution_id):
            data = row["data"] or {}
            if row["task_type"] == "wait" and data.get(pauses.TOKEN_KEY) and float(data.get("until", now + 1)) <= now:
                await self.db(pauses.end_step, self.store, data[pauses.TOKEN_KEY], wait_output(data), None)

    async def _claim_fast(
        self, execution_id: str, flow_hint: tuple[str, str, int] | None
    ) -> tuple[dict[str, Any], bool] | None:
        """Claim (and start, when the flow is known to have no concurrency limit) in one statement."""
        flow = self.catalog.cached(*flow_hint) if flow_hint is not None else None
        start = flow is not None and flow.concurrency is None
        if self.store.is_sqlite:
            return self.store.claim_fresh(execution_id, self.owner, start)
        return await self.claims((execution_id, start))  # with the claims made meanwhile: one statement

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
            await self.after_end(execution, flow)
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
            limit = flow.concurrency.limit if flow.concurrency and not is_iteration(execution) else None
            started = await self.db(self.store.try_start, execution_id, flow.namespace, flow.id, limit)
            if started is None:
                assert flow.concurrency is not None
                return self._over_limit(execution, flow)
            execution = started
        run = Run(execution, flow, {} if first_run else self._replayable_steps(execution, flow))
        self.emit({"event": "execution", "execution_id": execution_id, "state": State.RUNNING, "flow": flow.key})

        async def walk() -> dict[str, Any]:
            return await self.walk_flow(run)

        call: Callable[[], Awaitable[dict[str, Any]]] = walk

        for layer in reversed(self.middleware):
            call = bind_execution(layer, run, call)
        return await call()

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
        if not await self.wake(execution_id):
            execution = self.store.get_execution(execution_id)
            raise HubError(f"execution {execution_id} is {execution['state']}, not PAUSED")

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


__all__ = [
    "Engine", "Middleware", "PauseSignal", "Run", "StepCall", "StepFailed", "StepLog", "TaskError",
]
