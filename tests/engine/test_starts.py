"""Starting executions (``hub.engine.starts.Starts`` behind ``Engine.start``): on PostgreSQL,
concurrent starts share one INSERT transaction and one queue submit; a failed batch is retried
row by row so each caller gets its own answer; on SQLite each start is written inline."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from hub.engine import starts as starts_module
from hub.engine.batches import MAX_BATCH
from hub.engine.runner import Engine
from hub.errors import NotFound
from hub.flow.loader import load_text
from hub.flow.models import Flow
from hub.store.store import Store
from hub.testing import make_engine
from tests.conftest import _postgres_store

pytestmark = pytest.mark.anyio

FLOW = """
id: greet
namespace: st
inputs: [{id: n, type: int}]
tasks:
  - {id: echo, type: set, values: {n: "{{ inputs.n }}"}}
"""


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def pg_store() -> Iterator[Store]:
    yield from _postgres_store()


class RecordingQueue:
    """A queue with ``submit_many`` that records each call (nothing runs)."""

    def __init__(self, fail: BaseException | None = None):
        self.fail = fail
        self.many: list[tuple[list[str], dict[str, tuple[str, str, int]]]] = []
        self.single: list[str] = []

    async def submit(self, execution_id: str, delay: float = 0.0) -> None:
        self.single.append(execution_id)

    async def submit_many(self, execution_ids: list[str], delay: float = 0.0,
                          hints: dict[str, tuple[str, str, int]] | None = None) -> None:
        self.many.append((list(execution_ids), dict(hints or {})))
        if self.fail is not None:
            raise self.fail

    def submitted(self) -> list[str]:
        return [i for ids, _ in self.many for i in ids]


class InsertSpy:
    """Wraps ``store.insert_executions`` (delegating to the real method) and records each call."""

    def __init__(self, store: Store):
        self.real = store.insert_executions
        self.calls: list[list[str]] = []  # the ids of each call
        self.failed: list[bool] = []

    def __call__(self, rows: list[dict[str, Any]], along: Any = ()) -> None:
        self.calls.append([str(r["id"]) for r in rows])
        try:
            self.real(rows, along)
        except BaseException:
            self.failed.append(True)
            raise
        self.failed.append(False)

    @property
    def sizes(self) -> list[int]:
        return [len(c) for c in self.calls]


def engine_on(store: Store, queue: RecordingQueue) -> tuple[Engine, InsertSpy, Flow, int]:
    """An engine on ``store`` with ``queue``, a spy on its inserts, and FLOW deployed (flow, revision)."""
    engine = make_engine(store)
    engine.queue = queue
    spy = InsertSpy(store)
    store.insert_executions = spy  # type: ignore[method-assign]
    flow = load_text(FLOW)
    return engine, spy, flow, engine.deploy(flow)


def new_id() -> str:
    return uuid.uuid4().hex


# -- PostgreSQL: gathered starts ------------------------------------------------------------------


@pytest.mark.postgres
async def test_concurrent_starts_share_insert_calls_and_one_submit(pg_store: Store) -> None:
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(pg_store, queue)

    ids = await asyncio.gather(*(engine.start(flow, {"n": i}, revision=revision) for i in range(50)))

    assert len(set(ids)) == 50
    for i, execution_id in enumerate(ids):
        row = pg_store.get_execution(execution_id)
        assert row["state"] == "QUEUED"
        assert row["inputs"] == {"n": i}
        assert (row["namespace"], row["flow_id"], row["revision"]) == ("st", "greet", revision)
    # written in fewer INSERT calls than starts, each id exactly once, none of them failed
    assert len(spy.calls) < 50
    assert max(spy.sizes) > 1
    assert sorted(i for call in spy.calls for i in call) == sorted(ids)
    assert not any(spy.failed)
    # and submitted through submit_many (fewer calls than starts), each id once, with its flow revision
    assert 1 <= len(queue.many) < 50
    assert queue.single == []
    assert sorted(queue.submitted()) == sorted(ids)
    for submitted, hints in queue.many:
        assert hints == {i: ("st", "greet", revision) for i in submitted}
    # the batching task finished with the last batch
    assert engine.starts.batched.idle and engine.starts.batched.batches == len(spy.calls)


@pytest.mark.postgres
async def test_batches_are_capped_at_max_batch(pg_store: Store) -> None:
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(pg_store, queue)
    count = MAX_BATCH * 2 + 10

    ids = await asyncio.gather(*(engine.start(flow, {"n": i}, revision=revision) for i in range(count)))

    assert max(spy.sizes) <= MAX_BATCH
    assert len(spy.calls) >= 3
    assert sorted(i for call in spy.calls for i in call) == sorted(ids)
    assert sorted(queue.submitted()) == sorted(ids)
    assert all(len(submitted) <= MAX_BATCH for submitted, _ in queue.many)
    assert len(pg_store.list_executions(flow_id="greet", limit=count + 10)) == count
    for execution_id in ids:
        assert pg_store.get_execution(execution_id)["state"] == "QUEUED"


@pytest.mark.postgres
async def test_duplicate_id_in_a_batch_fails_only_its_caller(pg_store: Store) -> None:
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(pg_store, queue)
    taken = new_id()
    assert await engine.start(flow, {"n": -1}, revision=revision, execution_id=taken) == taken
    spy.calls.clear()
    spy.failed.clear()
    queue.many.clear()

    others = [new_id() for _ in range(9)]
    wanted = others[:4] + [taken] + others[4:]
    results = await asyncio.gather(
        *(engine.start(flow, {"n": i}, revision=revision, execution_id=eid) for i, eid in enumerate(wanted)),
        return_exceptions=True,
    )

    duplicate = results[4]
    assert isinstance(duplicate, IntegrityError), results
    assert [r for i, r in enumerate(results) if i != 4] == others
    for i, eid in enumerate(wanted):
        if eid != taken:
            row = pg_store.get_execution(eid)
            assert row["state"] == "QUEUED" and row["inputs"] == {"n": i}
    assert pg_store.get_execution(taken)["inputs"] == {"n": -1}  # the first start's row is untouched
    # one batch that failed, then one row at a time: only the duplicate's row failed again
    assert spy.sizes[0] == 10 and spy.failed[0]
    retried = dict(zip((c[0] for c in spy.calls[1:]), spy.failed[1:], strict=True))
    assert spy.sizes[1:] == [1] * 10
    assert retried == {eid: eid == taken for eid in wanted}
    # only the executions that were created are submitted, in one call
    assert len(queue.many) == 1
    assert sorted(queue.submitted()) == sorted(others)


@pytest.mark.postgres
async def test_only_enqueued_starts_of_a_batch_are_submitted(pg_store: Store) -> None:
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(pg_store, queue)

    ids = await asyncio.gather(
        *(engine.start(flow, {"n": i}, revision=revision, enqueue=i % 2 == 0) for i in range(10))
    )

    assert sorted(queue.submitted()) == sorted(ids[0::2])
    for execution_id in ids:
        assert pg_store.get_execution(execution_id)["state"] == "QUEUED"
    assert len(spy.calls) < 10


@pytest.mark.postgres
async def test_a_queue_that_fails_loses_nothing_the_starts_are_accepted(
    pg_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """Committed is accepted: with the queue down, the starts succeed, the executions wait QUEUED
    and unowned in the store (where a worker's sweep submits them), and a warning says so."""
    queue = RecordingQueue(fail=ConnectionError("redis is down"))
    engine, spy, flow, revision = engine_on(pg_store, queue)
    wanted = [new_id() for _ in range(20)]

    with caplog.at_level("WARNING", logger="hub.engine.starts"):
        results = await asyncio.gather(
            *(engine.start(flow, {"n": i}, revision=revision, execution_id=eid) for i, eid in enumerate(wanted))
        )

    assert results == wanted
    assert len(queue.many) < 20  # the batch was submitted together (and failed together)
    assert sorted(queue.submitted()) == sorted(wanted)
    for i, eid in enumerate(wanted):
        row = pg_store.get_execution(eid)
        assert row["state"] == "QUEUED" and row["inputs"] == {"n": i} and row["owner"] is None
    assert not any(spy.failed)
    assert "stay QUEUED in the store" in caplog.text and "redis is down" in caplog.text

    # the writer is not stuck: once the queue is back, the next starts are queued
    queue.fail = None
    later = await asyncio.gather(*(engine.start(flow, {"n": 100 + i}, revision=revision) for i in range(3)))
    assert [pg_store.get_execution(i)["inputs"] for i in later] == [{"n": 100}, {"n": 101}, {"n": 102}]
    assert set(later) <= set(queue.submitted())


@pytest.mark.postgres
async def test_a_duplicate_fails_alone_even_when_the_queue_fails_too(pg_store: Store) -> None:
    queue = RecordingQueue()
    engine, _, flow, revision = engine_on(pg_store, queue)
    taken = await engine.start(flow, {"n": -1}, revision=revision)
    hint = engine._hints.get(taken)
    other = load_text(FLOW.replace("id: greet", "id: greet_other"))
    other_revision = engine.deploy(other)
    queue.fail = ConnectionError("redis is down")
    wanted = [new_id(), taken, new_id()]

    results = await asyncio.gather(
        engine.start(flow, {"n": 0}, revision=revision, execution_id=wanted[0]),
        engine.start(other, {"n": 1}, revision=other_revision, execution_id=taken),  # a duplicate id
        engine.start(flow, {"n": 2}, revision=revision, execution_id=wanted[2]),
        return_exceptions=True,
    )

    assert isinstance(results[1], IntegrityError), results  # its own insert failed: that is its answer
    assert results[0] == wanted[0] and results[2] == wanted[2]  # committed: accepted
    assert engine._hints.get(taken) == hint  # the failed duplicate did not touch the first one's hint


@pytest.mark.postgres
async def test_a_database_error_other_than_a_constraint_reaches_the_whole_batch_at_once(pg_store: Store) -> None:
    from sqlalchemy.exc import OperationalError

    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(pg_store, queue)

    def down(rows: list[dict[str, Any]], along: Any = ()) -> None:
        spy.calls.append([str(r["id"]) for r in rows])
        raise OperationalError("INSERT", {}, ConnectionError("server closed the connection"))

    pg_store.insert_executions = down  # type: ignore[method-assign]
    first = asyncio.create_task(engine.start(flow, {"n": 0}, revision=revision))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(engine.start(flow, {"n": i}, revision=revision)) for i in range(1, 6)]
    results = await asyncio.gather(first, *rest, return_exceptions=True)

    assert all(isinstance(r, OperationalError) for r in results), results
    assert [len(c) for c in spy.calls] == [1, 5]  # no row-by-row retries against a database that is down
    assert queue.many == []


@pytest.mark.postgres
async def test_failed_batch_does_not_affect_the_next_batch(pg_store: Store) -> None:
    """Starts that arrive while a failing batch is written go in the next batch, with their own answer."""
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(pg_store, queue)
    taken = await engine.start(flow, {"n": 0}, revision=revision)
    spy.calls.clear()
    spy.failed.clear()

    first = [asyncio.create_task(engine.start(flow, {"n": 1}, revision=revision, execution_id=taken))]
    await asyncio.sleep(0)  # the writer starts on the first batch (a lone duplicate)
    second = [asyncio.create_task(engine.start(flow, {"n": i}, revision=revision)) for i in range(2, 6)]
    results = await asyncio.gather(*first, *second, return_exceptions=True)

    assert isinstance(results[0], IntegrityError)
    for i, execution_id in enumerate(results[1:], start=2):
        assert isinstance(execution_id, str)
        assert pg_store.get_execution(execution_id)["inputs"] == {"n": i}
    # the lone duplicate was written (and failed) alone; the four that came meanwhile went together
    assert spy.sizes == [1, 4] and spy.failed == [True, False]


# -- SQLite: inline writes --------------------------------------------------------------------------


async def test_sqlite_start_is_written_inline(sqlite_store: Store) -> None:
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(sqlite_store, queue)

    execution_id = await engine.start(flow, {"n": 7}, revision=revision)

    row = sqlite_store.get_execution(execution_id)  # visible as soon as start returns
    assert row["state"] == "QUEUED" and row["inputs"] == {"n": 7}
    assert engine.starts.batched.batches == 0
    assert spy.calls == [[execution_id]]
    assert queue.submitted() == [execution_id]


async def test_sqlite_concurrent_starts_are_each_written_alone(sqlite_store: Store) -> None:
    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(sqlite_store, queue)

    ids = await asyncio.gather(*(engine.start(flow, {"n": i}, revision=revision) for i in range(10)))

    assert engine.starts.batched.batches == 0
    assert spy.sizes == [1] * 10
    assert sorted(i for call in spy.calls for i in call) == sorted(ids)
    assert [len(submitted) for submitted, _ in queue.many] == [1] * 10
    assert [sqlite_store.get_execution(i)["inputs"] for i in ids] == [{"n": i} for i in range(10)]


async def test_sqlite_duplicate_id_fails_that_start(sqlite_store: Store) -> None:
    queue = RecordingQueue()
    engine, _, flow, revision = engine_on(sqlite_store, queue)
    taken = await engine.start(flow, {"n": 1}, revision=revision)

    with pytest.raises(IntegrityError):
        await engine.start(flow, {"n": 2}, revision=revision, execution_id=taken)

    assert sqlite_store.get_execution(taken)["inputs"] == {"n": 1}
    assert queue.submitted() == [taken]


async def test_sqlite_queue_failure_keeps_the_accepted_row(sqlite_store: Store) -> None:
    queue = RecordingQueue(fail=ConnectionError("redis is down"))
    engine, _, flow, revision = engine_on(sqlite_store, queue)
    wanted = new_id()

    assert await engine.start(flow, {"n": 3}, revision=revision, execution_id=wanted) == wanted

    assert sqlite_store.get_execution(wanted)["state"] == "QUEUED"  # committed: accepted, swept later
    with pytest.raises(NotFound):
        sqlite_store.get_execution(new_id())


async def test_a_queue_that_does_not_answer_does_not_hold_the_start(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class HungQueue(RecordingQueue):
        async def submit_many(self, execution_ids: list[str], delay: float = 0.0,
                              hints: dict[str, tuple[str, str, int]] | None = None) -> None:
            await super().submit_many(execution_ids, delay, hints)
            await asyncio.Event().wait()  # Redis accepted the connection and says nothing

    monkeypatch.setattr(starts_module, "SUBMIT_TIMEOUT", 0.2)
    engine, _, flow, revision = engine_on(sqlite_store, HungQueue())
    with caplog.at_level("WARNING", logger="hub.engine.starts"):
        execution_id = await asyncio.wait_for(engine.start(flow, {"n": 1}, revision=revision), 10)
    assert sqlite_store.get_execution(execution_id)["state"] == "QUEUED"
    assert "stay QUEUED in the store" in caplog.text and "TimeoutError" in caplog.text


# -- claim=True: created RUNNING and owned, run without a second statement ---------------------------

LIMITED = FLOW.replace("id: greet", "id: limited\nconcurrency: {limit: 1}")


async def test_a_claimed_start_is_created_running_and_owned_then_run_without_a_claim(store: Store, monkeypatch) -> None:
    engine = make_engine(store)
    claims: list[str] = []
    monkeypatch.setattr(store, "claim_fresh", lambda execution_id, *a: claims.append(execution_id))
    execution_id = await engine.start(load_text(FLOW), {"n": 4}, enqueue=False, claim=True, labels={"k": ("a",)})
    row = store.get_execution(execution_id)
    assert row["state"] == "RUNNING" and row["owner"] == engine.owner
    assert row["started_at"] == row["heartbeat_at"] == row["created_at"]
    done = await engine.run(execution_id)
    assert done["state"] == "SUCCESS"
    assert store.latest_steps(execution_id)["echo"]["output"] == {"n": 4}
    assert claims == []  # the row it was created with was enough
    assert store.get_execution(execution_id)["labels"] == {"k": ["a"]}  # as stored: JSON


async def test_a_claimed_start_the_process_never_ran_is_taken_over_when_its_owner_is_gone(store: Store) -> None:
    first = make_engine(store)
    execution_id = await first.start(load_text(FLOW), {"n": 1}, enqueue=False, claim=True)
    store.update_execution(execution_id, owner="otherhost:1:abc", heartbeat_at=0.0)  # a process that died
    second = make_engine(store)
    done = await second.run(execution_id)
    assert done["state"] == "SUCCESS"


async def test_a_flow_with_a_concurrency_limit_is_not_claimed_at_start(store: Store) -> None:
    engine = make_engine(store)
    execution_id = await engine.start(load_text(LIMITED), {"n": 2}, enqueue=False, claim=True)
    assert store.get_execution(execution_id)["state"] == "QUEUED"
    assert (await engine.run(execution_id))["state"] == "SUCCESS"


async def test_execute_runs_a_claimed_start(store: Store) -> None:
    engine = make_engine(store)
    done = await engine.execute(load_text(FLOW), {"n": 7})
    assert done["state"] == "SUCCESS" and done["owner"] is None and done["ended_at"] >= done["started_at"]
    assert store.latest_steps(done["id"])["echo"]["output"] == {"n": 7}


async def test_a_claimed_start_killed_before_it_runs_stays_killed(store: Store) -> None:
    # the kill lands between start and run (the enrichment API spawns the run a loop turn later)
    engine = make_engine(store)
    execution_id = await engine.start(load_text(FLOW), {"n": 3}, enqueue=False, claim=True)
    assert (await engine.kill(execution_id))["state"] == "KILLED"
    done = await engine.run(execution_id)
    assert done["state"] == "KILLED" and store.get_execution(execution_id)["state"] == "KILLED"
    assert store.step_runs(execution_id) == []


async def test_a_claimed_start_whose_caller_goes_away_while_it_is_written_still_runs(store: Store) -> None:
    """Cancelled while its row was being written: the row is accepted work, RUNNING and owned by
    this process (no other would take it), so this process runs it."""
    engine = make_engine(store)
    ids = [uuid.uuid4().hex]
    start = asyncio.ensure_future(
        engine.start(load_text(FLOW), {"n": 3}, enqueue=False, claim=True, execution_id=ids[0])
    )
    await asyncio.sleep(0)  # it is inside the write now
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    row: dict[str, Any] = {}
    for _ in range(250):
        try:
            row = store.get_execution(ids[0])
        except NotFound:  # not committed yet
            row = {}
        if row.get("state") == "SUCCESS":
            break
        await asyncio.sleep(0.02)
    assert row["state"] == "SUCCESS" and row["owner"] is None
    assert store.latest_steps(ids[0])["echo"]["output"] == {"n": 3}


async def test_starts_claiming_one_idempotency_key_create_one_execution(store: Store) -> None:
    """Writes along a start (a webhook's idempotency claim) share its transaction: of concurrent
    starts claiming one key, one execution is created and every other start hears which (on
    PostgreSQL they land in one batch, which is retried row by row)."""
    from hub.store.api_store import ApiStore, KeyTaken

    queue = RecordingQueue()
    engine, spy, flow, revision = engine_on(store, queue)
    api = ApiStore(store)

    async def start(n: int) -> str:
        execution_id = new_id()
        along = api.claim_along("webhook:st.greet.hook", "evt-1", "h", execution_id)
        try:
            return await engine.start(flow, {"n": n}, revision=revision, execution_id=execution_id, along=along)
        except KeyTaken as taken:
            return "replayed " + taken.earlier["execution_id"]

    answers = await asyncio.gather(*(start(n) for n in range(8)))
    created = [a for a in answers if not a.startswith("replayed")]
    assert len(created) == 1
    assert set(answers) - set(created) == {"replayed " + created[0]}
    assert store.get_execution(created[0])["state"] == "QUEUED"
    assert [row["id"] for row in store.list_executions()] == created
    assert queue.submitted() == created
