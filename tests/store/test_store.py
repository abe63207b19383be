"""Store queries on SQLite and PostgreSQL."""

from __future__ import annotations

from hub.store.store import Store


def test_a_label_filter_finds_matching_executions_past_the_newest_page(store: Store) -> None:
    def create(labels: dict) -> str:
        return store.create_execution(namespace="ns", flow_id="f", revision=1, inputs={}, state="SUCCESS", labels=labels)

    wanted = create({"customer": "acme", "tier": "pro"})
    for i in range(30):  # newer executions without the label, and one with another value
        create({"customer": "other"} if i == 0 else {})
    found = store.list_executions(label=("customer", "acme"), limit=5)
    assert [r["id"] for r in found] == [wanted]
    assert store.list_executions(label=("customer", "nobody")) == []
    assert len(store.list_executions(label=("customer", "other"), limit=5)) == 1


def test_updates_name_only_real_columns(store: Store) -> None:
    """The hot-path updates are prebuilt statements that set the columns their parameters name;
    a key that is no column is refused (it would otherwise be skipped without a word)."""
    import pytest

    execution_id = store.create_execution(namespace="n", flow_id="f", revision=1, inputs={}, state="QUEUED")
    with pytest.raises(ValueError, match=r"not columns of executions: \['stat'\]"):
        store.update_execution(execution_id, stat="RUNNING")
    with pytest.raises(ValueError, match=r"not columns of executions: \['bogus'\]"):
        store.write_batch([], [], (execution_id, {"state": "RUNNING", "bogus": 1}))
    assert store.get_execution(execution_id)["state"] == "QUEUED"
    store.update_execution(execution_id, state="RUNNING", resume_at=None)
    assert store.get_execution(execution_id)["state"] == "RUNNING"


def test_keyset_pages_walk_a_filtered_history_once_each(store: Store) -> None:
    """Pages ``after`` the last row of the previous one: every match once, newest first, also when
    rows share a creation time and when new rows arrive between pages."""
    same_instant = 1_700_000_000.0
    rows = []
    for i in range(23):
        row = Store.execution_row(namespace="ns", flow_id="f" if i % 3 else "g", revision=1, inputs={}, state="SUCCESS",
                                  labels={"tier": 2} if i % 2 else {"tier": "two"})
        row["created_at"] = same_instant + (i // 4)  # four rows per instant
        rows.append(row)
    store.insert_executions(rows)
    expected = [r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True) if r["flow_id"] == "f"]

    seen: list[str] = []
    after = None
    while True:
        page = store.list_executions(flow_id="f", limit=4, after=after)
        if not page:
            break
        seen += [r["id"] for r in page]
        after = (page[-1]["created_at"], page[-1]["id"])
        store.create_execution(namespace="ns", flow_id="f", revision=1, inputs={}, state="QUEUED")  # newer: not in this walk
    assert seen == expected

    numbers = store.list_executions(label=("tier", "2"), limit=100)  # a number label matches its JSON text
    assert sorted(r["id"] for r in numbers) == sorted(r["id"] for r in rows if r["labels"] == {"tier": 2})
    first = store.list_executions(label=("tier", "two"), limit=3)
    rest = store.list_executions(label=("tier", "two"), limit=100, after=(first[-1]["created_at"], first[-1]["id"]))
    assert [r["id"] for r in first + rest] == [
        r["id"] for r in sorted(rows, key=lambda r: (r["created_at"], r["id"]), reverse=True) if r["labels"] == {"tier": "two"}
    ]
