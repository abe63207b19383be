"""A newer hub opens a database an older one wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hub.store import migrations
from hub.store.store import Store
from hub.testing import make_engine, run_flow

# the schema hub wrote at version 1 (before trace ids and resume_at existed)
V1 = """
CREATE TABLE executions (
  id VARCHAR PRIMARY KEY, namespace VARCHAR NOT NULL, flow_id VARCHAR NOT NULL, revision INTEGER NOT NULL,
  state VARCHAR NOT NULL, inputs JSON, outputs JSON, error JSON, labels JSON, trigger JSON,
  parent_id VARCHAR, parent_path VARCHAR, restarted_from VARCHAR, owner VARCHAR, heartbeat_at FLOAT,
  created_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT, updated_at FLOAT NOT NULL);
CREATE TABLE step_runs (
  id INTEGER PRIMARY KEY, execution_id VARCHAR NOT NULL, path VARCHAR NOT NULL, task_id VARCHAR NOT NULL,
  task_type VARCHAR NOT NULL, attempt INTEGER NOT NULL, state VARCHAR NOT NULL, params JSON, output JSON,
  output_ref VARCHAR, error JSON, data JSON, started_at FLOAT NOT NULL, ended_at FLOAT);
CREATE TABLE flow_revisions (
  id INTEGER PRIMARY KEY, namespace VARCHAR NOT NULL, flow_id VARCHAR NOT NULL, revision INTEGER NOT NULL,
  content_hash VARCHAR NOT NULL, source TEXT NOT NULL, disabled BOOLEAN NOT NULL, deleted BOOLEAN NOT NULL,
  created_at FLOAT NOT NULL);
CREATE TABLE logs (id INTEGER PRIMARY KEY, execution_id VARCHAR NOT NULL, path VARCHAR, level VARCHAR NOT NULL,
  message TEXT NOT NULL, ts FLOAT NOT NULL);
CREATE TABLE blobs (id VARCHAR PRIMARY KEY, execution_id VARCHAR, content_type VARCHAR NOT NULL, size INTEGER NOT NULL,
  data BLOB NOT NULL, created_at FLOAT NOT NULL);
INSERT INTO executions VALUES ('old1', 'legacy', 'flow', 1, 'SUCCESS', '{}', '{"x": 1}', NULL, '{}', NULL,
  NULL, NULL, NULL, NULL, NULL, 1700000000, 1700000000, 1700000001, 1700000001);
"""


def test_a_version_1_database_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1)
    store = Store.open(f"sqlite:///{path}")
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST
    old = store.get_execution("old1")
    assert old["outputs"] == {"x": 1} and old["trace_id"] is None and old["resume_at"] is None
    result = run_flow("id: new\ntasks:\n  - {id: a, type: set, values: {v: 1}}\n", engine=make_engine(store))
    assert result.state == "SUCCESS"
    # opening again is a no-op
    assert Store.open(f"sqlite:///{path}").migrate() == []


def test_a_fresh_database_is_stamped_latest(store: Store) -> None:
    with store.engine.connect() as conn:
        assert migrations.current_version(conn) == migrations.LATEST


def test_flow_revisions_change_only_with_content(store: Store) -> None:
    assert store.save_flow("ns", "f", "id: f\n", "h1") == (1, True)
    assert store.save_flow("ns", "f", "id: f\n", "h1") == (1, False)
    assert store.save_flow("ns", "f", "id: f  # changed\n", "h2") == (2, True)
    assert store.get_flow_source("ns", "f") == (2, "id: f  # changed\n")
    assert store.get_flow_source("ns", "f", 1) == (1, "id: f\n")
