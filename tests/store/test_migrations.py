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

# what a version-2 hub had for the list: an index on state and one on created_at, labels only as JSON
V2 = V1.replace("created_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT, updated_at FLOAT NOT NULL);",
                "created_at FLOAT NOT NULL, started_at FLOAT, ended_at FLOAT, updated_at FLOAT NOT NULL,"
                " trace_id VARCHAR, span_id VARCHAR, resume_at FLOAT);", 1).replace(
    "output_ref VARCHAR, error JSON, data JSON, started_at FLOAT NOT NULL, ended_at FLOAT);",
    "output_ref VARCHAR, error JSON, data JSON, started_at FLOAT NOT NULL, ended_at FLOAT,"
    " trace_id VARCHAR, span_id VARCHAR);", 1).replace(
    "1700000000, 1700000000, 1700000001, 1700000001);", "1700000000, 1700000000, 1700000001, 1700000001,"
    " NULL, NULL, NULL);", 1) + """
INSERT INTO executions (id, namespace, flow_id, revision, state, inputs, labels, created_at, updated_at)
  VALUES ('old2', 'legacy', 'flow', 1, 'FAILED', '{}', '{"customer": "acme", "tier": 3}', 1700000100, 1700000100);
CREATE INDEX ix_executions_state ON executions (state);
CREATE INDEX ix_executions_created_at ON executions (created_at);
CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);
INSERT INTO schema_version VALUES (1, 2);
"""


def test_a_version_2_database_gets_the_list_indexes_and_its_labels_become_searchable(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V2)
    store = Store.open(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (migrations.LATEST,)
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM executions WHERE state = 'FAILED' "
                            "ORDER BY created_at DESC, id DESC LIMIT 50").fetchall()
    assert {"ix_executions_state_created", "ix_executions_flow_created", "ix_executions_namespace_created",
            "ix_executions_created", "ix_execution_labels_value"} <= indexes
    assert not {"ix_executions_state", "ix_executions_created_at"} & indexes  # prefixes of the new ones
    assert "ix_executions_state_created" in str(plan) and "TEMP B-TREE" not in str(plan)  # no sort of the matches
    assert [r["id"] for r in store.list_executions(label=("customer", "acme"))] == ["old2"]
    assert [r["id"] for r in store.list_executions(label=("tier", "3"))] == ["old2"]
    assert [r["id"] for r in store.list_executions(states=["FAILED"])] == ["old2"]
    assert [r["id"] for r in store.list_executions(after=(1700000100.0, "old2"))] == ["old1"]
    store.close()


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


def test_the_version_4_step_on_both_databases(store: Store) -> None:
    """A database as a version-3 hub left it (no label rows, the old list indexes) moves to
    version 4 on SQLite and PostgreSQL alike, and its labels are found."""
    from sqlalchemy import inspect, text

    tagged = store.create_execution(namespace="n", flow_id="f", revision=1, inputs={}, state="SUCCESS",
                                    labels={"customer": "acme", "vip": True})
    store.create_execution(namespace="n", flow_id="f", revision=1, inputs={}, state="SUCCESS")
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE execution_labels"))
        for name in ("ix_executions_created", "ix_executions_state_created", "ix_executions_flow_created",
                     "ix_executions_namespace_created"):
            conn.execute(text(f"DROP INDEX {name}"))
        conn.execute(text("CREATE INDEX ix_executions_state ON executions (state)"))
        conn.execute(text("UPDATE schema_version SET version = 3"))
    assert store.migrate()[0] == "migrated to version 4: list indexes and execution labels"  # (later steps follow)
    with store.engine.connect() as conn:
        names = {index["name"] for index in inspect(conn).get_indexes("executions")}
    assert "ix_executions_state_created" in names and "ix_executions_state" not in names
    assert [r["id"] for r in store.list_executions(label=("vip", "true"))] == [tagged]
    assert [r["id"] for r in store.list_executions(label=("customer", "acme"))] == [tagged]


def test_the_version_5_step_on_both_databases(store: Store) -> None:
    """Eval results and label moves as a version-4 hub wrote them get the columns of the quality
    loop (judge cost, spend, cache; who, why, eval run, forced), old rows kept with defaults."""
    from sqlalchemy import inspect, text

    from hub.prompts.registry import PromptRegistry

    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE eval_results"))
        conn.execute(text("DROP TABLE prompt_label_moves"))
        conn.execute(text("CREATE TABLE eval_results (id INTEGER PRIMARY KEY, run_id VARCHAR NOT NULL, cost FLOAT)"))
        conn.execute(text(
            "CREATE TABLE prompt_label_moves (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, label VARCHAR NOT NULL, "
            "version INTEGER NOT NULL, previous INTEGER, moved_at FLOAT NOT NULL)"
        ))
        conn.execute(text("INSERT INTO prompt_label_moves (id, name, label, version, moved_at) VALUES (1, 'p', 'production', 1, 0)"))
        conn.execute(text("DROP TABLE IF EXISTS online_scores"))
        conn.execute(text("UPDATE schema_version SET version = 4"))
    assert store.migrate()[0] == "migrated to version 5: eval judge cost/spend/cache, label move audit, online scoring"
    with store.engine.connect() as conn:
        results = {c["name"] for c in inspect(conn).get_columns("eval_results")}
        assert {"judge_cost", "spent", "cached"} <= results and inspect(conn).has_table("online_scores")
    [old] = PromptRegistry(store.engine).history("p")
    assert (old["actor"], old["reason"], old["eval_run"], old["forced"]) == (None, None, None, False)


def test_the_version_6_step_on_both_databases(store: Store, tmp_path: Path) -> None:
    """Approval gates and votes as a version-5 hub wrote them get their revision columns; old votes
    count for revision 0, the revision of an old gate."""
    from sqlalchemy import text

    from hub.approvals.service import Approvals

    with store.engine.begin() as conn:
        for table in ("approval_votes", "approval_gates"):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN revision"))
        conn.execute(text("ALTER TABLE approval_votes DROP COLUMN changes"))
        conn.execute(text(
            "INSERT INTO approval_votes (gate_id, voter, identity, channel, vote, at) "
            "VALUES ('g1', 'key:ana', 'key:ana', 'api', 'approve', 0)"))
        conn.execute(text("UPDATE schema_version SET version = 5"))
    assert store.migrate()[0] == "migrated to version 6: approval edit revisions"
    [vote] = Approvals(store, home=tmp_path).votes("g1")
    assert (vote["revision"], vote["changes"]) == (0, None)
