"""Each plugin's own migration history (the sample third-party plugin's too), processes starting
together on one database, and ``hub db``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from hub.store import migrations
from hub.store.branches import plugin_branches
from hub.store.store import Store
from tests.store.databases import empty_database, release_0_1

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("kind", KINDS)
def test_a_third_party_plugins_migration_runs_on_its_own_history(kind: str, tmp_path: Path) -> None:
    """A database whose sample history is at its first revision (the plugin's older release)
    gets the second one (a new column), the rows kept, and no other history is touched."""
    with empty_database(kind, tmp_path) as url:
        store = Store.open(url)
        try:
            with store.engine.begin() as conn:
                conn.execute(text("DROP TABLE sample_greetings"))
                conn.execute(text("CREATE TABLE sample_greetings (name VARCHAR NOT NULL PRIMARY KEY, count INTEGER NOT NULL)"))
                conn.execute(text("INSERT INTO sample_greetings (name, count) VALUES ('ada', 3)"))
                conn.execute(text("UPDATE alembic_version_sample SET version_num = 'sample_0001'"))
            done = store.migrate()
            assert done == ["sample: upgraded to sample_0002 (Greetings keep when they were last given.)"]
            with store.engine.connect() as conn:
                assert conn.execute(text("SELECT name, count, last_at FROM sample_greetings")).all() == [("ada", 3, None)]
                assert conn.execute(text("SELECT version_num FROM alembic_version_sample")).scalar() == "sample_0002"
            assert store.migrate() == []
        finally:
            store.close()


@pytest.mark.parametrize("kind", KINDS)
def test_a_plugin_installed_later_gets_its_tables_from_its_history(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        store = Store.open(url)
        try:
            with store.engine.begin() as conn:
                conn.execute(text("DROP TABLE sample_greetings"))
                conn.execute(text("DROP TABLE alembic_version_sample"))
            assert store.migrate() == ["sample: upgraded to sample_0001 (Greetings: who, how often.)",
                                       "sample: upgraded to sample_0002 (Greetings keep when they were last given.)"]
            with store.engine.connect() as conn:
                assert {c["name"] for c in inspect(conn).get_columns("sample_greetings")} == {"name", "count", "last_at"}
        finally:
            store.close()


def test_the_history_of_an_uninstalled_plugin_is_left_alone(sqlite_store: Store) -> None:
    with sqlite_store.engine.begin() as conn:
        conn.execute(text("CREATE TABLE alembic_version_gone (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        conn.execute(text("INSERT INTO alembic_version_gone VALUES ('gone_0007')"))
    assert sqlite_store.migrate(force=True) == []


def test_a_plugin_whose_tables_have_no_migrations_gets_them_created(sqlite_store: Store) -> None:
    """The older way (``hub.tables`` alone): created when missing, never altered."""
    from hub.core.plugins import default_plugins

    module = "tests.store.unmanaged_tables"
    default_plugins().load(lambda hub: hub.tables(module), name="unmanaged")
    try:
        assert sqlite_store.migrate(force=True) == ["created table unmanaged_notes (a plugin without migrations)"]
        assert sqlite_store.migrate(force=True) == []
    finally:
        plugins = default_plugins()
        plugins._infos = [i for i in plugins._infos if i.name != "unmanaged"]
        plugins._by_kind["tables"].pop(module, None)


def test_a_plugins_sqlmodel_tables_may_reference_the_hubs_and_be_imported(sqlite_store: Store) -> None:
    """The hub's tables are Core tables of their own metadata; a plugin's SQLModel table with a
    foreign key to ``executions`` is still created, and so is a model its module imports."""
    from hub.core.plugins import default_plugins

    module = "tests.store.unmanaged_refs"
    default_plugins().load(lambda hub: hub.tables(module), name="unmanaged_refs")
    try:
        done = sqlite_store.migrate(force=True)
        assert sorted(done) == ["created table execution_notes (a plugin without migrations)",
                                "created table unmanaged_notes (a plugin without migrations)"]
        with sqlite_store.engine.connect() as conn:
            keys = conn.execute(text("PRAGMA foreign_key_list(execution_notes)")).fetchall()
        assert [(k[2], k[3], k[4]) for k in keys] == [("executions", "execution_id", "id")]
    finally:
        plugins = default_plugins()
        plugins._infos = [i for i in plugins._infos if i.name != "unmanaged_refs"]
        plugins._by_kind["tables"].pop(module, None)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("start", ["empty", "release_0_1"])
def test_processes_starting_together_migrate_once(kind: str, start: str, tmp_path: Path) -> None:
    """Four processes open one database at once (a new one, or hub 0.1's): every one starts, and
    the histories are at their heads with one row each."""
    with empty_database(kind, tmp_path) as url:
        if start == "release_0_1":
            release_0_1(url)
        code = ("import sys\nfrom hub.store.store import Store\n"
                "Store.open(sys.argv[1]).close()\nprint('ok')\n")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        results: list[subprocess.CompletedProcess[str]] = []

        def start_one() -> None:
            results.append(subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True,
                                          timeout=90, env=env, cwd=tmp_path))

        threads = [threading.Thread(target=start_one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert [r.returncode for r in results] == [0] * 4, [r.stderr[-2000:] for r in results]
        store = Store.open(url, migrate=False)
        try:
            assert migrations.is_current(store.engine, plugin_branches())
            with store.engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM alembic_version_core")).scalar() == 1
                if start == "release_0_1":
                    assert conn.execute(text("SELECT count(*) FROM execution_labels")).scalar() == 2  # not filled twice
        finally:
            store.close()


def hub(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HUB_HOME": str(tmp_path / ".hub"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("HUB_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "hub.cli", *args], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)


def test_hub_db_upgrade_current_and_history(tmp_path: Path) -> None:
    home = tmp_path / ".hub"
    home.mkdir()
    release_0_1(f"sqlite:///{home / 'hub.db'}")
    behind = hub(tmp_path, "db", "current", "--check")
    assert behind.returncode == 1
    assert "core         -" in behind.stdout and "not created: run `hub db upgrade`" in behind.stdout
    done = hub(tmp_path, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "adopting a database of schema version 5 (hub 0.1's migrations) into Alembic"
    assert "sample: upgraded to sample_0002 (Greetings keep when they were last given.)" in done.stdout
    again = hub(tmp_path, "db", "upgrade")
    assert again.stdout.strip() == "the database is at every head; nothing to do"
    now = hub(tmp_path, "db", "current", "--check", "--json")
    assert now.returncode == 0
    rows = {row["history"]: row for row in json.loads(now.stdout)}
    assert rows["sample"] == {"history": "sample", "plugin": "sample", "location": "hub_sample_plugin:migrations",
                              "database": ["sample_0002"], "heads": ["sample_0002"], "state": "current"}
    assert {row["state"] for row in rows.values()} == {"current"}
    history = hub(tmp_path, "db", "history", "sample")
    assert history.stdout.splitlines() == [
        "sample (sample: hub_sample_plugin:migrations)",
        "  sample_0002      <- sample_0001      Greetings keep when they were last given.",
        "  sample_0001      <- (base)           Greetings: who, how often.",
    ]
    wrong = hub(tmp_path, "db", "history", "nope")
    assert wrong.returncode == 2 and "no history 'nope'" in wrong.stderr


def test_a_plugin_whose_migrations_folder_is_missing_is_reported_and_the_others_migrate(sqlite_store: Store,
                                                                                    caplog: pytest.LogCaptureFixture) -> None:
    from hub.core.plugins import default_plugins

    plugins = default_plugins()
    plugins.load(lambda hub: hub.migrations("hub_sample_plugin:no_such_folder", name="lost"), name="lost")
    try:
        names = [b.name for b in plugin_branches()]
        assert "lost" not in names and "sample" in names
        assert "plugin lost: migrations 'hub_sample_plugin:no_such_folder': no folder" in caplog.text
        assert sqlite_store.migrate(force=True) == []
    finally:
        plugins._infos = [i for i in plugins._infos if i.name != "lost"]
        plugins._by_kind["migrations"].pop("lost", None)


def test_a_failing_script_names_its_history_and_keeps_nothing(tmp_path: Path) -> None:
    """The sample history's second script meets a table it cannot alter: the error names the
    history, and the transaction leaves the database as it was (one transaction on SQLite too)."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    store = Store.open(url)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE sample_greetings"))
            conn.execute(text("UPDATE alembic_version_sample SET version_num = 'sample_0001'"))
        with pytest.raises(migrations.SchemaError, match=r"schema history 'sample' \(plugin sample\)"):
            store.migrate()
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version_sample")).scalar() == "sample_0001"
    finally:
        store.close()
