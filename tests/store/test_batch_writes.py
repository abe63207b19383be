"""The store's writes for many executions at once: claims and ends (group commit in the worker)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy.exc import OperationalError

import hub.store.steps as steps_module
from hub.errors import NotFound
from hub.store.store import EndWrite, Store


def _running(store: Store, n: int) -> list[str]:
    ids = [store.create_execution(namespace="n", flow_id="f", revision=1, inputs={"i": i}, state="QUEUED")
           for i in range(n)]
    for execution_id in ids:
        store.update_execution(execution_id, state="RUNNING", owner="me")
    return ids


def _end(store: Store, execution_id: str, output: object) -> EndWrite:
    now = time.time()
    step = store.step_values(execution_id, "only", "only", "set", 1, "SUCCESS", output=output, started_at=now)
    values = {"state": "SUCCESS", "outputs": {"out": output}, "error": None, "ended_at": now, "owner": None,
              "resume_at": None, "updated_at": now}
    return EndWrite(execution_id, values, [step])


def test_the_ends_of_many_executions_are_written_together(store: Store) -> None:
    ids = _running(store, 3)
    store.update_execution(ids[1], trace_id="ab" * 16, span_id="cd" * 8)  # written during the run
    assert store.end_executions([_end(store, i, n) for n, i in enumerate(ids)]) == [
        {"trace_id": None, "span_id": None}, {"trace_id": "ab" * 16, "span_id": "cd" * 8},
        {"trace_id": None, "span_id": None},
    ]  # what the end reads back: the trace context, which others than the end write
    for n, execution_id in enumerate(ids):
        row = store.get_execution(execution_id)
        assert (row["state"], row["outputs"], row["error"], row["owner"]) == ("SUCCESS", {"out": n}, None, None)
        assert [(s["path"], s["output"]) for s in store.step_runs(execution_id)] == [("only", n)]


def test_batches_of_any_size_write_every_column_of_their_rows(store: Store) -> None:
    """On PostgreSQL a batch is one statement of one array per column, whatever its size: values
    of every type, JSON of every shape and columns that are NULL in every row come back as written."""
    for size in (2, 5):
        ids = _running(store, size)
        ends = []
        for n, execution_id in enumerate(ids):
            now = time.time()
            first = store.step_values(execution_id, "a", "a", "set", 1, "SUCCESS", params={"n": [n, "x"]},
                                      output={"deep": {"n": n}}, started_at=now)
            second = store.step_values(execution_id, "b[0]", "b", "fail", 2, "FAILED", error={"message": f"no {n}"},
                                       started_at=now)
            values = {"state": "FAILED", "outputs": None, "error": {"message": f"no {n}"}, "ended_at": now,
                      "owner": None, "resume_at": None, "updated_at": now}
            ends.append(EndWrite(execution_id, values, [first, second]))
        assert all(isinstance(found, dict) for found in store.end_executions(ends))
        for n, execution_id in enumerate(ids):
            row = store.get_execution(execution_id)
            assert (row["state"], row["outputs"], row["error"]) == ("FAILED", None, {"message": f"no {n}"})
            runs = {s["path"]: s for s in store.step_runs(execution_id)}
            assert (runs["a"]["params"], runs["a"]["output"], runs["a"]["attempt"]) == ({"n": [n, "x"]}, {"deep": {"n": n}}, 1)
            assert (runs["b[0]"]["error"], runs["b[0]"]["output"], runs["b[0]"]["attempt"]) == ({"message": f"no {n}"}, None, 2)


def test_a_batch_of_ends_takes_whole_seconds_and_nulls_among_its_values(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _running(store, 3)
    if not store.is_sqlite:  # in the batch's statements, not written again one by one
        monkeypatch.setattr(store, "_end_one", lambda end: pytest.fail("an end was written alone"))
    ends = []
    for n, execution_id in enumerate(ids):  # (one array per column: ints and floats mixed, all-null columns)
        step = store.step_values(execution_id, "only", "only", "set", 1, "SUCCESS", output=None,
                                 started_at=1_700_000_000 + n if n != 1 else 1_700_000_000.5, ended_at=1_700_000_002)
        values = {"state": "SUCCESS", "outputs": None, "error": None, "ended_at": 1_700_000_003 if n else 1.5,
                  "owner": None, "resume_at": None, "updated_at": 1_700_000_003}
        ends.append(EndWrite(execution_id, values, [step, step[:1] + ("other",) + step[2:]]))
    assert store.end_executions(ends) == [{"trace_id": None, "span_id": None}] * 3
    assert [store.get_execution(i)["ended_at"] for i in ids] == [1.5, 1_700_000_003, 1_700_000_003]
    runs = store.step_runs(ids[1])
    assert [(r["path"], r["started_at"], r["output"]) for r in runs] == [("only", 1_700_000_000.5, None),
                                                                         ("other", 1_700_000_000.5, None)]


def test_an_end_that_cannot_be_written_fails_alone(store: Store) -> None:
    ids = _running(store, 2)
    ends = [_end(store, ids[0], "a"), _end(store, "no-such-execution", "b"), _end(store, ids[1], "c")]
    results = store.end_executions(ends)
    assert results[0] == results[2] == {"trace_id": None, "span_id": None}
    assert isinstance(results[1], NotFound)
    assert [store.get_execution(i)["outputs"] for i in ids] == [{"out": "a"}, {"out": "c"}]
    assert store.step_runs("no-such-execution") == []


def test_a_batch_whose_connection_fails_commits_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    if store.is_sqlite:
        pytest.skip("SQLite writes each end alone")
    ids = _running(store, 3)

    def lost(*_: object) -> str:  # after the step runs went in, before the commit
        raise OperationalError("UPDATE ...", {}, ConnectionError("server closed the connection"))

    monkeypatch.setattr(steps_module, "end_executions_sql", lost)
    with pytest.raises(OperationalError):
        store.end_executions([_end(store, i, 1) for i in ids])
    for execution_id in ids:
        assert store.get_execution(execution_id)["state"] == "RUNNING"
        assert store.step_runs(execution_id) == []


def test_claims_of_many_executions_answer_each_in_order(store: Store) -> None:
    ids = [store.create_execution(namespace="n", flow_id="f", revision=1, inputs={}, state="QUEUED")
           for _ in range(4)]
    store.update_execution(ids[1], owner="someone-else")
    store.update_execution(ids[3], state="SUCCESS")
    claimed = store.claim_fresh_many([(ids[0], True), (ids[1], True), (ids[2], False), (ids[3], True)], "me")
    assert claimed[1] is None and claimed[3] is None  # owned elsewhere; ended
    first, first_run = claimed[0]  # type: ignore[misc]
    assert (first["id"], first["state"], first["owner"], first_run) == (ids[0], "RUNNING", "me", True)
    third, third_run = claimed[2]  # type: ignore[misc]
    assert (third["id"], third["state"], third["owner"], third_run) == (ids[2], "QUEUED", "me", True)
    assert store.get_execution(ids[1])["owner"] == "someone-else"
