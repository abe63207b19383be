"""The execution table's JSON columns hold the same text for a value whatever the path that
writes it (a Core statement, a driver-level write, a batch of ends) and whichever the database:
a value JSON has no word for is converted as a step's output is (hub.store.json_text)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from hub.engine.base import ended_row
from hub.store.json_text import as_stored, json_text
from hub.store.store import EndWrite, Store

ODD: dict[str, Any] = {
    "when": datetime(2026, 12, 3, 19, 0, tzinfo=UTC), "day": date(2026, 12, 3), "amount": Decimal("12.50"),
    "raw": b"bytes", "pair": ("a", 1), "ratio": float("nan"), "name": "Zoë",
}
READ: dict[str, Any] = {
    "when": "2026-12-03T19:00:00Z", "day": "2026-12-03", "amount": "12.50", "raw": "bytes", "pair": ["a", 1],
    "ratio": None, "name": "Zoë",
}
"""ODD as every path stores it and reading it back gives it."""


def test_the_encoder_converts_what_json_has_no_word_for() -> None:
    assert as_stored(ODD) == READ
    assert json_text(None) == "null" and json_text({"a": [1]}) == '{"a":[1]}'
    assert ended_row({"id": "x"}, {"outputs": ODD, "error": {"at": ODD["when"]}}) == {
        "id": "x", "outputs": READ, "error": {"at": READ["when"]},
    }


def _row(store: Store, **fields: Any) -> dict[str, Any]:
    return store.execution_row(namespace="n", flow_id="f", revision=1, state="RUNNING", **fields)


def _columns(store: Store, execution_id: str) -> tuple[Any, ...]:
    row = store.get_execution(execution_id)
    return row["inputs"], row["outputs"], row["error"], row["labels"], row["trigger"]


def test_a_new_execution_stores_odd_values_alone_or_with_others(store: Store) -> None:
    alone = store.create_execution(namespace="n", flow_id="f", revision=1, state="RUNNING", inputs=ODD,
                                   trigger={"odd": ODD})  # one row: the driver on SQLite, autocommit Core on PostgreSQL
    many = [_row(store, inputs=ODD, labels={"day": ODD["day"]}, trigger={"odd": ODD}) for _ in range(2)]
    store.insert_executions(many)  # Core, with the label rows
    for execution_id in (alone, *(row["id"] for row in many)):
        inputs, _, _, _, trigger = _columns(store, execution_id)
        assert inputs == READ and trigger == {"odd": READ}
    assert store.full_execution_row(many[0])["inputs"] == store.get_execution(many[0]["id"])["inputs"]
    assert store.get_execution(many[0]["id"])["labels"] == {"day": "2026-12-03"}
    found = store.list_executions(label=("day", "2026-12-03"))  # the label as it reads back finds it
    assert sorted(row["id"] for row in found) == sorted(row["id"] for row in many)


def _end(store: Store, execution_id: str) -> EndWrite:
    now = time.time()
    step = store.step_values(execution_id, "s", "s", "set", 1, "SUCCESS", params=ODD, output=ODD, error=None,
                             data={"odd": ODD}, started_at=now)
    values = {"state": "FAILED", "outputs": ODD, "error": {"odd": ODD}, "ended_at": now, "owner": None,
              "resume_at": None, "updated_at": now}
    return EndWrite(execution_id, values, [step])


def test_an_end_stores_odd_values_alone_or_in_a_batch(store: Store) -> None:
    ids = [store.create_execution(namespace="n", flow_id="f", revision=1, state="RUNNING", inputs={})
           for _ in range(4)]
    batch = store.end_executions([_end(store, ids[0]), _end(store, ids[1])])  # one batch on PostgreSQL
    alone = store.end_executions([_end(store, ids[2])])  # a batch of one: written alone
    assert not any(isinstance(result, Exception) for result in batch + alone), batch + alone
    written = store.write_batch([], [], (ids[3], {"outputs": ODD, "error": {"odd": ODD}}))  # RETURNING the row
    assert written is not None and (written["outputs"], written["error"]) == (READ, {"odd": READ})
    for execution_id in ids:
        _, outputs, error, _, _ = _columns(store, execution_id)
        assert (outputs, error) == (READ, {"odd": READ}), execution_id
    for execution_id in ids[:3]:
        [step] = store.step_runs(execution_id)
        assert (step["params"], step["output"], step["data"]) == (READ, READ, {"odd": READ})


def test_updates_and_step_writes_store_odd_values(store: Store) -> None:
    execution_id = store.create_execution(namespace="n", flow_id="f", revision=1, state="RUNNING", inputs={})
    store.update_execution(execution_id, outputs=ODD, error={"odd": ODD})  # Core UPDATE
    assert _columns(store, execution_id)[1:3] == (READ, {"odd": READ})
    step_id = store.start_step(execution_id, "s", "s", "python", 1, ODD, time.time(), data={"odd": ODD})
    store.finish_step(step_id, "SUCCESS", output=ODD, error={"odd": ODD}, execution_id=execution_id)
    [step] = store.step_runs(execution_id)
    assert (step["params"], step["output"], step["error"], step["data"]) == (READ, READ, {"odd": READ}, {"odd": READ})
