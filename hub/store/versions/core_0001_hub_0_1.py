"""hub 0.1: the store's tables (flows, executions, step runs, logs, blobs, API keys, idempotency keys).

Creates each table that is missing. A database the hand-written migrations made (hub 0.1 and
older: schema version 1-5) is brought to version 5 first: trace and span ids and ``resume_at``
(version 2), the list indexes and the ``execution_labels`` rows (version 4); what this adds is
what those steps added, so a database already at version 5 is left as it is.

Revision ID: core_0001
Revises:
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "core_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    if "executions" in present:
        _to_version_5(bind)
    for name, create in TABLES.items():
        if name not in present:
            create()
    if "executions" in present and "execution_labels" not in present:
        _fill_labels(bind)


EXECUTION_INDEXES = (
    ("ix_executions_created", ["created_at", "id"]),
    ("ix_executions_flow_created", ["flow_id", "namespace", "created_at", "id"]),
    ("ix_executions_flow_state", ["namespace", "flow_id", "state"]),
    ("ix_executions_namespace_created", ["namespace", "created_at", "id"]),
    ("ix_executions_parent_id", ["parent_id"]),
    ("ix_executions_state_created", ["state", "created_at", "id"]),
    ("ix_executions_state_owner", ["state", "owner"]),
)


def _to_version_5(bind: Any) -> None:
    """The columns and indexes the hand-written steps 2 and 4 added, where they are missing."""
    _add_missing(bind, "executions", [sa.Column("trace_id", sa.String()), sa.Column("span_id", sa.String()),
                                      sa.Column("resume_at", sa.Float())])
    _add_missing(bind, "step_runs", [sa.Column("trace_id", sa.String()), sa.Column("span_id", sa.String())])
    for name in ("ix_executions_state", "ix_executions_created_at"):  # prefixes of the version-4 indexes
        op.execute(f"DROP INDEX IF EXISTS {name}")
    have = {index["name"] for index in sa.inspect(bind).get_indexes("executions")}
    for name, columns in EXECUTION_INDEXES:
        if name not in have:
            op.create_index(name, "executions", columns, unique=False)
    if "step_runs" in sa.inspect(bind).get_table_names():
        have = {index["name"] for index in sa.inspect(bind).get_indexes("step_runs")}
        if "ix_step_runs_execution_path" not in have:
            op.create_index("ix_step_runs_execution_path", "step_runs", ["execution_id", "path"], unique=False)


def _add_missing(bind: Any, table: str, columns: list[sa.Column[Any]]) -> None:
    if table not in sa.inspect(bind).get_table_names():
        return
    have = {column["name"] for column in sa.inspect(bind).get_columns(table)}
    for column in columns:
        if column.name not in have:
            op.add_column(table, column)


def _fill_labels(bind: Any) -> None:
    """One ``execution_labels`` row per label of every execution, in pages of the primary key (a
    million executions never sit in memory at once). A value is stored as the text of a string,
    the JSON of anything else (``hub.store.labels.label_text`` as of 0.1)."""
    labels = sa.table("execution_labels", sa.column("execution_id"), sa.column("key"), sa.column("value"),
                      sa.column("created_at"))
    last = ""
    while True:
        chunk = bind.execute(
            sa.text("SELECT id, labels, created_at FROM executions WHERE id > :last ORDER BY id LIMIT 2000"),
            {"last": last},
        ).all()
        if not chunk:
            return
        last = chunk[-1][0]
        rows = [{"execution_id": row[0], "key": str(key), "created_at": row[2],
                 "value": value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))}
                for row in chunk for key, value in _labels(row[1]).items()]
        if rows:
            bind.execute(labels.insert(), rows)


def _labels(raw: Any) -> dict[str, Any]:
    value = json.loads(raw) if isinstance(raw, str | bytes) else raw
    return value if isinstance(value, dict) else {}


def _api_keys() -> None:
    op.create_table("api_keys",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("key_hash", sa.String(), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )


def _blobs() -> None:
    op.create_table("blobs",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=True),
        sa.Column("content_type", sa.String(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_blobs_execution_id", "blobs", ["execution_id"], unique=False)


def _execution_labels() -> None:
    op.create_table("execution_labels",
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("execution_id", "key")
    )
    op.create_index("ix_execution_labels_value", "execution_labels", ["key", "value", "created_at", "execution_id"], unique=False)


def _executions() -> None:
    op.create_table("executions",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=True),
        sa.Column("outputs", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("labels", sa.JSON(), nullable=True),
        sa.Column("trigger", sa.JSON(), nullable=True),
        sa.Column("parent_id", sa.String(), nullable=True),
        sa.Column("parent_path", sa.String(), nullable=True),
        sa.Column("restarted_from", sa.String(), nullable=True),
        sa.Column("owner", sa.String(), nullable=True),
        sa.Column("heartbeat_at", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("span_id", sa.String(), nullable=True),
        sa.Column("resume_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    for name, columns in EXECUTION_INDEXES:
        op.create_index(name, "executions", columns, unique=False)


def _flow_revisions() -> None:
    op.create_table("flow_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace", sa.String(), nullable=False),
        sa.Column("flow_id", sa.String(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace", "flow_id", "revision")
    )
    op.create_index("ix_flow_revisions_flow_id", "flow_revisions", ["flow_id"], unique=False)
    op.create_index("ix_flow_revisions_namespace", "flow_revisions", ["namespace"], unique=False)


def _idempotency_keys() -> None:
    op.create_table("idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("body_hash", sa.String(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "key")
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"], unique=False)


def _logs() -> None:
    op.create_table("logs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=True),
        sa.Column("level", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_logs_execution_id", "logs", ["execution_id"], unique=False)


def _step_runs() -> None:
    op.create_table("step_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("execution_id", sa.String(), nullable=False),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("task_id", sa.String(), nullable=False),
        sa.Column("task_type", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("output", sa.JSON(), nullable=True),
        sa.Column("output_ref", sa.String(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("ended_at", sa.Float(), nullable=True),
        sa.Column("trace_id", sa.String(), nullable=True),
        sa.Column("span_id", sa.String(), nullable=True),
        sa.PrimaryKeyConstraint("id")
    )
    op.create_index("ix_step_runs_execution_path", "step_runs", ["execution_id", "path"], unique=False)


TABLES = {"api_keys": _api_keys, "blobs": _blobs, "execution_labels": _execution_labels, "executions": _executions, "flow_revisions": _flow_revisions, "idempotency_keys": _idempotency_keys, "logs": _logs, "step_runs": _step_runs}
