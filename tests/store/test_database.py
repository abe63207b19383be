"""``hub.store.database.Database``: a store's database opened alone (what ``hub eval`` of a prompt
uses), migrated like a Store, writing a model call's record on its SQLite writer connection, and
handing out the full Store on the same engines when something asks for more."""

from __future__ import annotations

from pathlib import Path

from hub.llm.records import CallLog, RowWriter
from hub.store import migrations
from hub.store.database import Database
from hub.store.store import Store


def test_a_database_is_migrated_records_calls_and_shares_its_engines_with_the_store(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'nested' / 'hub.db'}"
    db = Database(url)
    try:
        assert (tmp_path / "nested" / "hub.db").exists()
        assert isinstance(db, RowWriter) and db.is_sqlite
        log = CallLog(db.engine, db)
        assert log.writer is db
        first = log.record(execution_id="ev_1", path="v1/fast/a#1", model="fast", status="ok")
        assert [c["id"] for c in log.calls("ev_1")] == [first]
        full = db.store()
        assert isinstance(full, Store) and db.store() is full
        assert full.engine is db.engine and full.auto is db.auto
        assert full.writer_lock is db.writer_lock  # one order for the process's writes
        blob = db.put_blob(b"{}")  # what a task may ask of it goes to the full store
        assert db.get_blob(blob) == b"{}"
    finally:
        db.close()
    assert db.writer_fairy is None


def test_a_database_opens_a_store_made_by_a_store_without_migrating_again(tmp_path: Path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    Store.open(url).close()

    def no_upgrade(*args: object) -> list[str]:
        raise AssertionError("a database at its head is not upgraded again")

    monkeypatch.setattr(migrations, "upgrade", no_upgrade)
    monkeypatch.setattr(migrations, "upgrade_branch", no_upgrade)
    db = Database(url)
    try:
        assert CallLog(db.engine, db).calls("nobody") == []
    finally:
        db.close()
