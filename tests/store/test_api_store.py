"""The API's repository: flow heads cached for a bounded time, cleared by changes made here."""

from __future__ import annotations

from hub.flow.loader import load_text
from hub.store.api_store import ApiStore
from hub.store.store import Store
from hub.testing import make_engine

FLOW = "id: cached\nnamespace: st\ntasks:\n  - {id: a, type: set, values: {n: 1}}\n"


def test_flow_heads_are_reused_within_the_ttl_and_cleared_by_changes_made_here(sqlite_store: Store) -> None:
    make_engine(sqlite_store).deploy(load_text(FLOW))
    here = ApiStore(sqlite_store, head_ttl=3600)
    elsewhere = ApiStore(sqlite_store)  # another server on the same database
    assert here.flow_head("st", "cached") == {"revision": 1, "disabled": False, "deleted": False}

    elsewhere.set_disabled("st", "cached", True)
    assert here.flow_head("st", "cached")["disabled"] is False  # within the TTL: the head it read
    assert elsewhere.flow_head("st", "cached")["disabled"] is True  # no TTL: always read

    here.set_disabled("st", "cached", False)  # a change made here applies at once
    assert here.flow_head("st", "cached")["disabled"] is False
    elsewhere.set_disabled("st", "cached", True)
    here.forget_flows()
    assert here.flow_head("st", "cached")["disabled"] is True

    make_engine(sqlite_store).deploy(load_text(FLOW.replace("n: 1", "n: 2")))
    assert here.flow_head("st", "cached")["revision"] == 1  # cached
    here.forget_flows()
    assert here.flow_head("st", "cached")["revision"] == 2
