"""Schema migrations: a newer hub opens a database an older one wrote.

A fresh database gets every table at once (``create_all``) and is stamped with the newest
version. An older one is moved forward step by step; each step is plain DDL that both SQLite
and PostgreSQL accept, and ``create_all`` then adds any table the older hub did not have. A
database already at :data:`LATEST` costs one query to open.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

from hub.store import tables
from hub.store.labels import label_text

log = logging.getLogger(__name__)

# Modules that define tables are imported only when the schema is created or moved forward
# (importing ~30 SQLModel classes costs ~100 ms, which `hub run` should not pay on every start).
# Plugins declare theirs (``hub.tables(module)``); the store's own are below.
# A change that adds a table must also add a migration step (``_create_new_tables`` will do).
CORE_TABLE_MODULES = (
    "hub.store.auth_tables",  # API keys, idempotency keys
)


def table_modules() -> list[str]:
    """The store's table modules and every plugin's."""
    from hub.core.plugins import default_plugins

    return [*CORE_TABLE_MODULES, *(c.name for c in default_plugins().all("tables"))]


def _import_table_modules() -> None:
    for name in table_modules():
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken plugin's tables: its plugin is already reported
            log.error("tables of %s not created: %s: %s", name, type(exc).__name__, exc)


def _create_new_tables(conn: Connection) -> None:
    """A step for changes that only add tables."""
    _import_table_modules()
    SQLModel.metadata.create_all(conn)


def _v2_trace_columns(conn: Connection) -> None:
    """Version 2: trace and span ids on executions and step runs; resume time of paused executions."""
    existing = {c["name"] for c in inspect(conn).get_columns("executions")}
    for column, sql_type in (("trace_id", "VARCHAR"), ("span_id", "VARCHAR"), ("resume_at", "FLOAT")):
        if column not in existing:
            conn.execute(text(f"ALTER TABLE executions ADD COLUMN {column} {sql_type}"))
    existing = {c["name"] for c in inspect(conn).get_columns("step_runs")}
    for column in ("trace_id", "span_id"):
        if column not in existing:
            conn.execute(text(f"ALTER TABLE step_runs ADD COLUMN {column} VARCHAR"))


def _v4_list_indexes(conn: Connection) -> None:
    """Version 4: an index per list filter ending in the lists' order (state, flow, namespace,
    created), and the ``execution_labels`` table, filled from the executions' labels."""
    for name in ("ix_executions_state", "ix_executions_created_at"):  # now prefixes of the new ones
        conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
    for index in tables.Execution.__table__.indexes:  # type: ignore[attr-defined]
        index.create(conn, checkfirst=True)
    labels = tables.ExecutionLabel.__table__  # type: ignore[attr-defined]
    labels.create(conn, checkfirst=True)
    last = ""
    while True:  # in pages of the primary key: a million executions never sit in memory at once
        chunk = conn.execute(
            text("SELECT id, labels, created_at FROM executions WHERE id > :last ORDER BY id LIMIT 2000"),
            {"last": last},
        ).all()
        if not chunk:
            return
        last = chunk[-1][0]
        found = [
            {"execution_id": row[0], "key": str(key), "value": label_text(value), "created_at": row[2]}
            for row in chunk for key, value in _labels(row[1]).items()
        ]
        if found:
            conn.execute(labels.insert(), found)


def _labels(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return value if isinstance(value, dict) else {}


def _add_columns(conn: Connection, table: str, columns: tuple[tuple[str, str], ...]) -> None:
    if not inspect(conn).has_table(table):
        return  # created whole by create_all below
    existing = {c["name"] for c in inspect(conn).get_columns(table)}
    for column, sql_type in columns:
        if column not in existing:
            conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {sql_type}"))


def _v5_eval_quality_loop(conn: Connection) -> None:
    """Version 5: eval results keep judge cost, spend and cache hits; label moves keep who, why
    and the eval run; online scoring tables (added by create_all)."""
    _add_columns(conn, "eval_results", (
        ("judge_cost", "FLOAT DEFAULT 0 NOT NULL"), ("spent", "FLOAT DEFAULT 0 NOT NULL"),
        ("cached", "BOOLEAN DEFAULT FALSE NOT NULL"),
    ))
    _add_columns(conn, "prompt_label_moves", (
        ("actor", "VARCHAR"), ("reason", "TEXT"), ("eval_run", "VARCHAR"), ("forced", "BOOLEAN DEFAULT FALSE NOT NULL"),
    ))


def _v6_approval_revisions(conn: Connection) -> None:
    """Version 6: approval gates count their form edits; each vote keeps the revision it saw and its edits."""
    _add_columns(conn, "approval_gates", (("revision", "INTEGER DEFAULT 0 NOT NULL"),))
    _add_columns(conn, "approval_votes", (("revision", "INTEGER DEFAULT 0 NOT NULL"), ("changes", "JSON")))


STEPS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (2, "trace/span ids and resume_at", _v2_trace_columns),
    (3, "bus publish records", _create_new_tables),
    (4, "list indexes and execution labels", _v4_list_indexes),
    (5, "eval judge cost/spend/cache, label move audit, online scoring", _v5_eval_quality_loop),
    (6, "approval edit revisions", _v6_approval_revisions),
]
LATEST = max(v for v, _, _ in STEPS)


def current_version(conn: Connection) -> int | None:
    try:
        with conn.begin_nested():
            row = conn.execute(text("SELECT version FROM schema_version WHERE id = 1")).first()
    except Exception:  # no such table yet
        return None
    return int(row[0]) if row else None


def migrate(conn: Connection) -> list[str]:
    """Bring the schema to :data:`LATEST`; returns what was done (for the log)."""
    done: list[str] = []
    version = current_version(conn)
    if version == LATEST:
        return done
    _import_table_modules()
    fresh = version is None and not inspect(conn).has_table("executions")
    if fresh:
        SQLModel.metadata.create_all(conn)
        conn.execute(text("INSERT INTO schema_version (id, version) VALUES (1, :v)"), {"v": LATEST})
        return [f"created schema version {LATEST}"]
    if version is None:
        version = 1
        SQLModel.metadata.create_all(conn, tables=[tables.SchemaVersion.__table__])  # type: ignore[attr-defined]
        conn.execute(text("INSERT INTO schema_version (id, version) VALUES (1, 1)"))
    if version > LATEST:
        raise RuntimeError(
            f"the database has schema version {version}, newer than this hub knows ({LATEST}); upgrade hub"
        )
    for step_version, description, step in STEPS:
        if step_version > version:
            step(conn)
            conn.execute(text("UPDATE schema_version SET version = :v WHERE id = 1"), {"v": step_version})
            done.append(f"migrated to version {step_version}: {description}")
    SQLModel.metadata.create_all(conn)
    return done
