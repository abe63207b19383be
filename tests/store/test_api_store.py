"""The API's repository: flow heads cached for a bounded time, cleared by changes made here."""

from __future__ import annotations

import time

import pytest

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


def test_an_idempotency_claim_is_one_statement_with_the_same_answers(store: Store) -> None:
    from sqlalchemy import event, select, update

    from hub.store.api_store import IDEMPOTENCY, IDEMPOTENCY_TTL

    api = ApiStore(store)
    api._idempotency_purged = time.time()  # no hourly purge in the way: the claim alone decides
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    for engine in {store.engine, store.auto}:
        event.listen(engine, "before_cursor_execute", seen)
    try:
        assert api.claim_idempotency("webhook:a.b.c", "k", "h1", "e1") is None
    finally:
        for engine in {store.engine, store.auto}:
            event.remove(engine, "before_cursor_execute", seen)
    assert len(statements) == 1 and statements[0].lstrip().upper().startswith("INSERT")

    earlier = api.claim_idempotency("webhook:a.b.c", "k", "h1", "e2")  # same key, same body
    assert earlier is not None and earlier["execution_id"] == "e1" and earlier["body_hash"] == "h1"
    other = api.claim_idempotency("webhook:a.b.c", "k", "h2", "e3")  # same key, other body: the caller says 422
    assert other is not None and other["execution_id"] == "e1" and other["body_hash"] == "h1"
    assert api.claim_idempotency("webhook:x.y.z", "k", "h2", "e4") is None  # keys are per trigger

    # an expired key is absent: the new claim takes it, with nothing left of the old record
    with store.engine.begin() as conn:
        conn.execute(update(IDEMPOTENCY).where(IDEMPOTENCY.c.scope == "webhook:a.b.c").values(
            created_at=time.time() - IDEMPOTENCY_TTL - 1, response={"old": True}))
    assert api.claim_idempotency("webhook:a.b.c", "k", "h2", "e5") is None
    again = api.claim_idempotency("webhook:a.b.c", "k", "h2", "e6")
    assert again is not None and again["execution_id"] == "e5" and again["body_hash"] == "h2"
    assert again["response"] is None
    with store.engine.connect() as conn:
        rows = conn.execute(select(IDEMPOTENCY.c.scope, IDEMPOTENCY.c.execution_id).order_by(IDEMPOTENCY.c.scope)).all()
    assert [tuple(r) for r in rows] == [("webhook:a.b.c", "e5"), ("webhook:x.y.z", "e4")]

    # claimed along an execution: a transaction that does not commit leaves the key free
    from hub.store.api_store import KeyTaken

    with pytest.raises(RuntimeError), store.engine.begin() as conn:
        api.claim_along("webhook:a.b.c", "new", "h", "e8")(conn)
        raise RuntimeError("the process died before the commit")
    with store.engine.begin() as conn:
        api.claim_along("webhook:a.b.c", "new", "h", "e9")(conn)
    with pytest.raises(KeyTaken) as taken, store.engine.begin() as conn:
        api.claim_along("webhook:a.b.c", "new", "h", "e10")(conn)
    assert taken.value.earlier["execution_id"] == "e9"


def test_concurrent_idempotency_claims_have_one_winner(store: Store) -> None:
    from concurrent.futures import ThreadPoolExecutor

    api = ApiStore(store)
    api._idempotency_purged = time.time()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: api.claim_idempotency("webhook:a.b.c", "race", "h", f"e{i}"), range(16)))
    winners = [i for i, answer in enumerate(answers) if answer is None]
    assert len(winners) == 1
    assert all(answer["execution_id"] == f"e{winners[0]}" for answer in answers if answer is not None)
