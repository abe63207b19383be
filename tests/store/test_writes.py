"""The writes of one execution's life (its row, a step's end, its end, a model call's record):
the same rows and answers on either database, whichever statements write them (on SQLite the
store's writer connection, prepared statements)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from hub.errors import NotFound
from hub.llm.records import CallLog
from hub.store.store import Store


def _execution(store: Store) -> str:
    return store.create_execution(
        namespace="n", flow_id="f", revision=1, inputs={"text": "hi", "n": [1, 2]}, state="RUNNING",
        trigger={"type": "enrich"},
    )


def test_an_execution_row_reads_back_as_written_and_a_duplicate_id_is_an_integrity_error(store: Store) -> None:
    execution_id = _execution(store)
    row = store.get_execution(execution_id)
    assert (row["inputs"], row["labels"], row["trigger"], row["state"]) == (
        {"text": "hi", "n": [1, 2]}, {}, {"type": "enrich"}, "RUNNING",
    )
    with pytest.raises(IntegrityError):
        store.create_execution(namespace="n", flow_id="f", revision=1, inputs={}, state="RUNNING",
                               execution_id=execution_id)


def test_a_step_end_and_the_execution_end_in_one_write_each(store: Store) -> None:
    execution_id = _execution(store)
    step = store.step_values(execution_id, "ask", "ask", "llm.chat", 1, "SUCCESS", params={"model": "m"},
                             output={"text": "ok"}, started_at=1.0, ended_at=2.0)
    # a step's end with columns of the execution row (its trace context), nothing returned
    assert store.write_batch([step], [], (execution_id, {"trace_id": "a" * 32, "span_id": "b" * 16}),
                             returning=False) is None
    ended = store.write_batch(
        [], [{"execution_id": execution_id, "path": None, "level": "info", "message": "done", "ts": 2.5}],
        (execution_id, {"state": "SUCCESS", "outputs": {"label": "ok", "none": None}, "error": None,
                        "ended_at": 3.0, "owner": None}),
        [("ask", 1, "c" * 32, "d" * 16)],
    )
    assert ended == store.get_execution(execution_id)
    assert ended["outputs"] == {"label": "ok", "none": None} and ended["error"] is None
    assert (ended["trace_id"], ended["span_id"], ended["state"]) == ("a" * 32, "b" * 16, "SUCCESS")
    [run] = store.step_runs(execution_id)
    assert (run["output"], run["trace_id"], run["span_id"]) == ({"text": "ok"}, "c" * 32, "d" * 16)
    assert [line["message"] for line in store.logs(execution_id)] == ["done"]


@pytest.mark.parametrize("returning", [True, False])
def test_a_write_to_a_missing_execution_is_not_found_and_writes_nothing(store: Store, returning: bool) -> None:
    step = store.step_values("gone", "a", "a", "http.request", 1, "SUCCESS", started_at=1.0, ended_at=2.0)
    with pytest.raises(NotFound):
        store.write_batch([step], [], ("gone", {"state": "SUCCESS"}), returning=returning)
    assert store.step_runs("gone") == []


def test_call_records_written_through_the_store(store: Store) -> None:
    execution_id = _execution(store)
    log = CallLog(store.engine, store)
    first = log.record(execution_id=execution_id, path="ask", status="ok", request={"messages": [{"role": "user"}]},
                       input_tokens=3, output_tokens=2, cost=0.25)
    second = log.record(execution_id=execution_id, path="ask", status="error", errors=[{"type": "Timeout"}])
    assert second > first
    one, two = log.calls(execution_id)
    assert (one["id"], one["request"], one["errors"], one["cost"]) == (first, {"messages": [{"role": "user"}]}, None, 0.25)
    assert (two["attempt"], two["round"], two["retries"], two["fallback_used"], two["cached"]) == (1, 1, 0, False, False)
    assert two["errors"] == [{"type": "Timeout"}] and two["created_at"] > 0
    assert log.totals(execution_id) == {"calls": 2, "input_tokens": 3, "output_tokens": 2, "cost": 0.25}
