"""Schema migrations: a newer hub opens a database an older one wrote.

A fresh database gets every table at once (``create_all``) and is stamped with the newest
version. An older one is moved forward step by step; each step is plain DDL that both SQLite
and PostgreSQL accept. Tables added by later modules (new tables, no changes to old ones) are
created by ``create_all`` after the steps.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

import connectors.email.tables  # noqa: F401  (email outbox and delivery records)
import connectors.slack.tables  # noqa: F401  (slack.post's re-run records)
import hub.approvals.tables  # noqa: F401  (approval gates, votes, links, messages, audit)
import hub.evals.tables  # noqa: F401  (eval runs, results, promotions)
import hub.llm.tables  # noqa: F401  (LLM calls and the response cache)
import hub.prompts.tables  # noqa: F401  (prompt versions, labels, pins)
import hub.telemetry.tables  # noqa: F401  (spans kept for the trace viewer)
import hub.triggers.tables  # noqa: F401  (trigger state: last/next fire, errors)
from hub.store import auth_tables, tables  # noqa: F401  (registers the tables on the metadata)


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


STEPS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (2, "trace/span ids and resume_at", _v2_trace_columns),
]
LATEST = max(v for v, _, _ in STEPS)


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table("schema_version"):
        return None
    row = conn.execute(text("SELECT version FROM schema_version WHERE id = 1")).first()
    return int(row[0]) if row else None


def migrate(conn: Connection) -> list[str]:
    """Bring the schema to :data:`LATEST`; returns what was done (for the log)."""
    done: list[str] = []
    version = current_version(conn)
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
