"""A newer hub opens a database an older one wrote (Alembic, one version history per plugin)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from hub.store import migrations
from hub.store.branches import plugin_branches
from hub.store.store import Store
from hub.testing import make_engine, run_flow
from tests.store.databases import empty_database, release_0_1, run_sql

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def at_heads(store: Store) -> bool:
    branches = plugin_branches()
    found = migrations.database_heads(store.engine, [b.version_table for b in branches])
    return found == {b.version_table: set(migrations.expected_heads(b)) for b in branches}


@pytest.mark.parametrize("kind", KINDS)
def test_a_database_of_hub_0_1_is_upgraded_and_keeps_its_data(kind: str, tmp_path: Path) -> None:
    """The schema hub 0.1 made (hand-written version 5), with rows in it, is adopted into every
    history and brought to its head; the rows are all there and the hub works on them."""
    from hub.prompts.registry import PromptRegistry

    with empty_database(kind, tmp_path) as url:
        release_0_1(url)
        store = Store.open(url)
        try:
            assert at_heads(store)
            old = store.get_execution("old1")
            assert old["outputs"] == {"x": 1} and old["inputs"] == {"who": "ana"} and old["trace_id"] == "aa11"
            assert [r["id"] for r in store.list_executions(label=("customer", "acme"))] == ["old1"]
            assert [r["id"] for r in store.list_executions(label=("tier", "3"))] == ["old1"]
            assert [(s["path"], s["output"]) for s in store.step_runs("old1")] == [("a", {"v": 1})]
            assert store.get_flow_source("legacy", "flow") == (1, "id: flow")
            [move] = PromptRegistry(store.engine).history("p")
            assert (move["actor"], move["reason"], move["forced"], move["version"]) == ("ana", "better", True, 2)
            with store.engine.connect() as conn:
                assert conn.execute(text("SELECT fire_count FROM trigger_states")).scalar() == 7
                assert conn.execute(text("SELECT name FROM api_keys WHERE id = 'hk_old'")).scalar() == "ci"
                assert conn.execute(text("SELECT version FROM schema_version")).scalar() == 5  # left for hub 0.1
                assert inspect(conn).has_table("sample_greetings")  # a plugin installed since: its history ran
            # new rows next to the old ones (the sequences of PostgreSQL's serial keys went on)
            assert store.save_flow("legacy", "flow", "id: flow  # changed", "h2") == (2, True)
            result = run_flow("id: new\ntasks:\n  - {id: a, type: set, values: {v: 1}}\n", engine=make_engine(store))
            assert result.state == "SUCCESS"
            assert store.migrate() == []  # opening again costs one query
        finally:
            store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_upgraded_release_has_exactly_the_schema_of_the_models(kind: str, tmp_path: Path) -> None:
    """What the scripts make of hub 0.1's database is what a fresh database is made of."""
    with empty_database(kind, tmp_path) as url:
        release_0_1(url)
        store = Store.open(url)
        try:
            assert schema_differences(store) == []
        finally:
            store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_the_scripts_from_nothing_make_the_schema_of_the_models(kind: str, tmp_path: Path) -> None:
    """A fresh database is made from the models and stamped (fast); running every history's
    scripts on an empty database must give the same tables, columns and indexes."""
    with empty_database(kind, tmp_path) as url:
        store = Store.open(url, migrate=False)
        try:
            with store.engine.begin() as conn:
                for branch in plugin_branches():
                    migrations.upgrade_branch(conn, branch)
            assert at_heads(store)
            assert schema_differences(store) == []
        finally:
            store.close()


def schema_differences(store: Store) -> list[object]:
    """What Alembic's autogenerate would change to make the database match the models (of the
    tables the histories own; server defaults the 0.1 steps added do not count)."""
    import importlib

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import MetaData

    modules = [importlib.import_module(m) for b in plugin_branches() for m in b.table_modules]
    metadata = MetaData()
    for module in modules:
        for table in migrations.tables_of(module):
            table.to_metadata(metadata)
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _ours})
        return compare_metadata(context, metadata)


def _ours(name: str | None, kind: str, _parent: object) -> bool:
    return not (kind == "table" and name is not None and (name.startswith("alembic_version_") or name == "schema_version"))


def test_the_heads_read_from_the_scripts_are_alembics() -> None:
    from hub.store.branches import heads

    for branch in plugin_branches():
        assert heads(branch) == tuple(sorted(migrations.script(branch).get_heads())), branch.name
    assert {b.name for b in plugin_branches()} >= {"core", "llm", "approvals", "triggers", "telemetry", "evals",
                                                   "bus", "email", "slack", "sample"}


def test_a_fresh_database_is_stamped_at_every_head(store: Store) -> None:
    assert at_heads(store)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version_sample")).scalar() == "sample_0002"
        assert not inspect(conn).has_table("schema_version")


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
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM executions WHERE state = 'FAILED' "
                            "ORDER BY created_at DESC, id DESC LIMIT 50").fetchall()
    assert at_heads(store)
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
    assert at_heads(store)
    old = store.get_execution("old1")
    assert old["outputs"] == {"x": 1} and old["trace_id"] is None and old["resume_at"] is None
    result = run_flow("id: new\ntasks:\n  - {id: a, type: set, values: {v: 1}}\n", engine=make_engine(store))
    assert result.state == "SUCCESS"
    assert Store.open(f"sqlite:///{path}").migrate() == []  # opening again is a no-op


@pytest.mark.parametrize("kind", KINDS)
def test_a_version_4_database_gets_the_columns_of_version_5(kind: str, tmp_path: Path) -> None:
    """Eval results and label moves as a version-4 hub wrote them get the columns of the quality
    loop (judge cost, spend, cache; who, why, eval run, forced), old rows kept with defaults."""
    from hub.prompts.registry import PromptRegistry

    with empty_database(kind, tmp_path) as url:
        release_0_1(url)
        run_sql(url, """
DROP TABLE eval_results
DROP TABLE prompt_label_moves
DROP TABLE online_scores
CREATE TABLE eval_results (id INTEGER PRIMARY KEY, run_id VARCHAR NOT NULL, cost FLOAT)
CREATE TABLE prompt_label_moves (id INTEGER PRIMARY KEY, name VARCHAR NOT NULL, label VARCHAR NOT NULL, version INTEGER NOT NULL, previous INTEGER, moved_at FLOAT NOT NULL)
INSERT INTO prompt_label_moves (id, name, label, version, moved_at) VALUES (1, 'q', 'production', 1, 0)
UPDATE schema_version SET version = 4
""")
        store = Store.open(url)
        try:
            with store.engine.connect() as conn:
                results = {c["name"] for c in inspect(conn).get_columns("eval_results")}
                assert {"judge_cost", "spent", "cached"} <= results and inspect(conn).has_table("online_scores")
            [old] = PromptRegistry(store.engine).history("q")
            assert (old["actor"], old["reason"], old["eval_run"], old["forced"]) == (None, None, None, False)
        finally:
            store.close()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("version", [5, 6])
def test_approval_votes_of_a_hand_written_database_count_for_revision_0(kind: str, version: int, tmp_path: Path) -> None:
    """Gates and votes as hub 0.1 wrote them (version 5) get the revision columns of the approvals
    history's second script; a database that went through hand-written step 6 has them already."""
    from hub.approvals.service import Approvals

    with empty_database(kind, tmp_path) as url:
        release_0_1(url)
        run_sql(url, "INSERT INTO approval_votes (gate_id, voter, identity, channel, vote, at) "
                     "VALUES ('g1', 'key:ana', 'key:ana', 'api', 'approve', 0)")
        if version == 6:
            run_sql(url, "ALTER TABLE approval_gates ADD COLUMN revision INTEGER DEFAULT 0 NOT NULL\n"
                         "ALTER TABLE approval_votes ADD COLUMN revision INTEGER DEFAULT 0 NOT NULL\n"
                         "ALTER TABLE approval_votes ADD COLUMN changes JSON\n"
                         "UPDATE schema_version SET version = 6")
        store = Store.open(url)
        try:
            assert at_heads(store)
            [vote] = Approvals(store, home=tmp_path).votes("g1")
            assert (vote["revision"], vote["changes"]) == (0, None)
        finally:
            store.close()


def test_a_database_newer_than_the_hub_is_refused_with_the_history_named(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version_core SET version_num = 'core_9999'"))
    with pytest.raises(migrations.SchemaError) as caught:
        store.migrate()
    assert "'core'" in str(caught.value) and "core_9999" in str(caught.value)


def test_a_hand_written_version_newer_than_0_1_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "v9.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(V1 + "CREATE TABLE schema_version (id INTEGER PRIMARY KEY, version INTEGER NOT NULL);"
                                "INSERT INTO schema_version VALUES (1, 9);")
    with pytest.raises(migrations.SchemaError, match="schema version 9, newer than this hub knows"):
        Store.open(f"sqlite:///{path}")


def test_flow_revisions_change_only_with_content(store: Store) -> None:
    assert store.save_flow("ns", "f", "id: f\n", "h1") == (1, True)
    assert store.save_flow("ns", "f", "id: f\n", "h1") == (1, False)
    assert store.save_flow("ns", "f", "id: f  # changed\n", "h2") == (2, True)
    assert store.get_flow_source("ns", "f") == (2, "id: f  # changed\n")
    assert store.get_flow_source("ns", "f", 1) == (1, "id: f\n")
