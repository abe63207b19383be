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
