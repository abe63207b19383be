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
