"""Empty databases for the migration tests, on SQLite and PostgreSQL, and the schema hub 0.1 made.

``release_0_1/{sqlite,postgres}.sql`` is what hub 0.1 (the hand-written migrations, schema
version 5) created on each database, dumped at the last commit of that system: frozen.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

RELEASE_0_1 = Path(__file__).parent / "release_0_1"

# rows as hub 0.1 wrote them (one statement a line; both databases read them)
RELEASE_0_1_DATA = """
INSERT INTO flow_revisions (namespace, flow_id, revision, content_hash, source, disabled, deleted, created_at)
  VALUES ('legacy', 'flow', 1, 'h1', 'id: flow', FALSE, FALSE, 1700000000)
INSERT INTO executions (id, namespace, flow_id, revision, state, inputs, outputs, labels, created_at, started_at, ended_at, updated_at, trace_id)
  VALUES ('old1', 'legacy', 'flow', 1, 'SUCCESS', '{"who": "ana"}', '{"x": 1}', '{"customer": "acme", "tier": 3}', 1700000000, 1700000000, 1700000001, 1700000001, 'aa11')
INSERT INTO execution_labels (execution_id, key, value, created_at) VALUES ('old1', 'customer', 'acme', 1700000000)
INSERT INTO execution_labels (execution_id, key, value, created_at) VALUES ('old1', 'tier', '3', 1700000000)
INSERT INTO step_runs (execution_id, path, task_id, task_type, attempt, state, params, output, started_at, ended_at)
  VALUES ('old1', 'a', 'a', 'set', 1, 'SUCCESS', '{}', '{"v": 1}', 1700000000, 1700000001)
INSERT INTO logs (execution_id, path, level, message, ts) VALUES ('old1', 'a', 'INFO', 'set v', 1700000000.5)
INSERT INTO prompt_label_moves (name, label, version, previous, moved_at, actor, reason, forced)
  VALUES ('p', 'production', 2, 1, 1700000002, 'ana', 'better', TRUE)
INSERT INTO trigger_states (namespace, flow_id, trigger_id, type, disabled, fire_count, updated_at)
  VALUES ('legacy', 'flow', 'nightly', 'schedule', FALSE, 7, 1700000003)
INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES ('hk_old', 'ci', 'f00d', '["read"]', 1700000004)
"""


def statements(script: str) -> list[str]:
    """The statements of a SQL script (``;``-separated, or one a line for the data above)."""
    lines = [line for line in script.splitlines() if line.strip() and not line.startswith("--")]
    joined = "\n".join(lines)
    if ";" in joined:
        return [s.strip() for s in joined.split(";") if s.strip()]
    parts: list[str] = []
    for line in lines:
        if line.startswith(" ") and parts:
            parts[-1] += "\n" + line
        else:
            parts.append(line)
    return parts


@contextmanager
def postgres_database() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL schema (dropped afterwards)."""
    url = os.environ.get("HUB_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HUB_TEST_POSTGRES_URL is not set")
    schema = f"t_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        from tests.conftest import _drop_schema

        _drop_schema(admin, schema)
        admin.dispose()


@contextmanager
def empty_database(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'hub.db'}"
    else:
        with postgres_database() as url:
            yield url


def run_sql(url: str, script: str) -> None:
    """Run a script as it is (no SQLAlchemy in between), the way an older hub's DDL reached the database."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            for statement in statements(script):
                conn.execute(statement)
        return
    engine = create_engine(url)
    with engine.begin() as conn:
        for statement in statements(script):
            conn.exec_driver_sql(statement.replace("%", "%%"))
    engine.dispose()


def release_0_1(url: str) -> None:
    """Make the database hub 0.1 made, with some of its rows."""
    name = "sqlite.sql" if url.startswith("sqlite") else "postgres.sql"
    run_sql(url, (RELEASE_0_1 / name).read_text())
    run_sql(url, RELEASE_0_1_DATA)
