"""The API's repository: flow heads cached for a bounded time, cleared by changes made here."""

from __future__ import annotations

import time

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


def test_a_verified_key_records_when_it_was_last_used(sqlite_store: Store) -> None:
    store = ApiStore(sqlite_store)
    row, token = store.create_key("ci", ["run"])
    assert row["last_used_at"] is None
    verified = store.verify_key(token)
    assert verified is not None and verified["last_used_at"] is not None
    assert store.get_key(row["id"])["last_used_at"] == verified["last_used_at"]
    assert store.verify_key(token + "x") is None  # a wrong secret is not a use


def test_expired_idempotency_keys_are_purged_by_a_later_claim(sqlite_store: Store) -> None:
    from sqlalchemy import func, insert, select

    from hub.store.api_store import IDEMPOTENCY, IDEMPOTENCY_TTL

    store = ApiStore(sqlite_store)
    old = time.time() - IDEMPOTENCY_TTL - 60
    with sqlite_store.engine.begin() as conn:
        conn.execute(insert(IDEMPOTENCY), [
            {"scope": "webhook:a.b.c", "key": f"k{i}", "body_hash": "h", "execution_id": f"e{i}", "created_at": old}
            for i in range(5)
        ])
    assert store.claim_idempotency("webhook:x.y.z", "fresh", "h", "e-new") is None
    with sqlite_store.engine.connect() as conn:
        keys = conn.execute(select(IDEMPOTENCY.c.key)).scalars().all()
        assert keys == ["fresh"]
        assert conn.execute(select(func.count()).select_from(IDEMPOTENCY)).scalar_one() == 1


def test_a_new_revision_keeps_the_disable_switch_however_it_is_saved(sqlite_store: Store) -> None:
    engine = make_engine(sqlite_store)
    engine.deploy(load_text(FLOW))
    api = ApiStore(sqlite_store)
    api.set_disabled("st", "cached", True)
    engine.deploy(load_text(FLOW.replace("n: 1", "n: 2")))  # e.g. hub serve loading a changed file
    assert sqlite_store.flow_head("st", "cached") == {"revision": 2, "disabled": True, "deleted": False}
    api.delete_flow("st", "cached")
    engine.deploy(load_text(FLOW.replace("n: 1", "n: 3")))  # created again after a delete: a new flow
    assert sqlite_store.flow_head("st", "cached") == {"revision": 3, "disabled": False, "deleted": False}
