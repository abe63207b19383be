"""The store's tables and its prebuilt hot-path statements, shared by its parts."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ARRAY, Connection, Engine, String, any_, bindparam, exc, func, insert, or_, update
from sqlalchemy.sql.elements import ClauseElement

# BLOBS and FLOWS are not used here: the store's parts take every table from this module
from hub.store.tables import BLOBS, EXECUTION_LABELS, EXECUTIONS, LOGS  # noqa: F401
from hub.store.tables import FLOW_REVISIONS as FLOWS  # noqa: F401
from hub.store.tables import STEP_RUNS as STEPS

# Hot-path statements are built once: SQLAlchemy then reuses their compiled form from its cache
# key, memoised on the statement (building one per call costs ~250 us of CPU in construction and
# cache-key generation). An UPDATE without .values() sets the columns named by the parameters.
INSERT_STEP = STEPS.insert()
INSERT_LOG = LOGS.insert()
INSERT_EXECUTION = insert(EXECUTIONS)
INSERT_LABELS = insert(EXECUTION_LABELS)
UPDATE_EXECUTION = update(EXECUTIONS).where(EXECUTIONS.c.id == bindparam("_execution_id"))
UPDATE_EXECUTION_RETURNING = UPDATE_EXECUTION.returning(*EXECUTIONS.c)
# what an execution's end reads back: the trace context, which a middleware may have written on
# its own during the run (the rest of the ended row is the claimed row and what the end wrote)
WRITTEN_ELSEWHERE = ("trace_id", "span_id")
UPDATE_EXECUTION_ENDED = UPDATE_EXECUTION.returning(*(EXECUTIONS.c[name] for name in WRITTEN_ELSEWHERE))
UPDATE_STEP = update(STEPS).where(STEPS.c.id == bindparam("_step_id"))


def _claim_statement(start: bool, many: bool = False) -> Any:
    values: dict[str, Any] = {"owner": bindparam("_owner"), "heartbeat_at": bindparam("_now"), "updated_at": bindparam("_now")}
    if start:
        values.update(state="RUNNING", started_at=func.coalesce(EXECUTIONS.c.started_at, bindparam("_now")))
    return (
        update(EXECUTIONS)
        .where(
            # many (PostgreSQL): ``= ANY(array)``, one statement text whatever the number of ids
            EXECUTIONS.c.id == any_(bindparam("_ids", type_=ARRAY(String))) if many
            else EXECUTIONS.c.id == bindparam("_execution_id"),
            or_(EXECUTIONS.c.owner.is_(None), EXECUTIONS.c.owner == bindparam("_owner")),
            # not state.in_(...): an IN list is expanded into the SQL at every execution
            or_(*(EXECUTIONS.c.state == state for state in ("CREATED", "QUEUED", "RUNNING"))),
        )
        .values(values)
        .returning(*EXECUTIONS.c)
    )


CLAIM = {start: _claim_statement(start) for start in (True, False)}
CLAIM_MANY = {start: _claim_statement(start, many=True) for start in (True, False)}

StepRow = tuple[Any, ...]
"""A finished step run as :meth:`~hub.store.steps.StepStore.step_values` makes it (see :data:`STEP_ROW`)."""

TRANSIENT_DB = (exc.OperationalError, exc.InterfaceError, exc.TimeoutError, OSError)
"""Failures of the database connection, not of the data written (a batch is not split over them)."""


@dataclass(frozen=True, slots=True)
class EndWrite:
    """What ends one run of an execution: its held-back step runs and log lines, the columns of
    its row (plain values), and trace contexts for its step runs (see :func:`set_step_contexts`)."""

    execution_id: str
    values: dict[str, Any]
    steps: list[StepRow] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    contexts: Sequence[tuple[str, int, str, str]] = ()


AlongWrite = Callable[[Connection], None]
"""A write done in the transaction that creates an execution (see :meth:`Store.insert_executions`)."""


class Conflict(Exception):
    """Raised by an :data:`AlongWrite` when committed data forbids the write (a key already
    taken): the transaction is rolled back and the caller gets the exception as it was raised."""


_COLUMNS = {EXECUTIONS.name: frozenset(EXECUTIONS.columns.keys()), STEPS.name: frozenset(STEPS.columns.keys())}


def param_mark(bind: Engine | Connection) -> str:
    """The parameter marker of the driver's paramstyle for raw SQL (``exec_driver_sql``): ``?`` for sqlite3
    (qmark), ``%s`` for psycopg (format)."""
    return "?" if bind.dialect.paramstyle == "qmark" else "%s"


def set_step_contexts(conn: Connection, execution_id: str, spans: Sequence[tuple[str, int, str, str]]) -> None:
    """Put ``(path, attempt, trace_id, span_id)`` on an execution's step runs: one prepared
    statement run by the driver's ``executemany`` (microseconds a step, not the tens a Core
    statement per row would cost)."""
    set_many_step_contexts(conn, [(execution_id, *span) for span in spans])


def set_many_step_contexts(conn: Connection, spans: Sequence[tuple[str, str, int, str, str]]) -> None:
    """:func:`set_step_contexts` for the step runs of several executions at once:
    ``(execution_id, path, attempt, trace_id, span_id)`` each, in one ``executemany``."""
    if spans:
        conn.exec_driver_sql(set_step_context_sql(param_mark(conn)),
                             [(trace_id, span_id, execution_id, path, attempt)
                              for execution_id, path, attempt, trace_id, span_id in spans])


def set_step_context_sql(mark: str) -> str:
    """The UPDATE of one step run's trace context, with the driver's parameter ``mark``."""
    return (f"UPDATE {STEPS.name} SET trace_id = {mark}, span_id = {mark} "
            f"WHERE execution_id = {mark} AND path = {mark} AND attempt = {mark}")


def plain(values: dict[str, Any], table: Any = EXECUTIONS) -> bool:
    """Whether every value is data (a prebuilt UPDATE can take it as a parameter). A key that is
    no column is an error, as it is for ``.values()`` (a prebuilt UPDATE would skip it silently)."""
    unknown = values.keys() - _COLUMNS[table.name]
    if unknown:
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
    return not any(isinstance(v, ClauseElement) for v in values.values())


STEP_ROW = (
    "execution_id", "path", "task_id", "task_type", "attempt", "state", "params", "output", "output_ref", "error",
    "data", "started_at", "ended_at",
)
"""The columns of a finished step run as :meth:`~hub.store.steps.StepStore.step_values` makes it
(a tuple in this order, its JSON columns already encoded)."""
_STEP_JSON = frozenset({"params", "output", "error", "data"})


def insert_steps_sql(bind: Engine | Connection, rows: int = 1) -> str:
    """The driver-level INSERT of :data:`STEP_ROW` tuples: one prepared statement, no SQLAlchemy
    compilation or JSON processing per row (the JSON columns arrive encoded). ``rows`` > 1: one
    statement for that many rows (their parameters flattened, see :func:`flat`), one round trip
    where the driver's ``executemany`` would pipeline one statement per row."""
    mark = param_mark(bind)
    cast = bind.dialect.name != "sqlite"  # PostgreSQL: text parameters into json columns
    values = ", ".join(f"CAST({mark} AS JSON)" if cast and column in _STEP_JSON else mark for column in STEP_ROW)
    return f"INSERT INTO {STEPS.name} ({', '.join(STEP_ROW)}) VALUES " + ", ".join([f"({values})"] * rows)


def flat(rows: Sequence[Sequence[Any]]) -> tuple[Any, ...]:
    """The parameters of a multi-row statement, row after row."""
    return tuple(value for row in rows for value in row)


ROWS_PER_STATEMENT = 500  # (PostgreSQL takes at most 65,535 parameters in one statement)


def _pg_type(column: str) -> str:
    from sqlalchemy.dialects import postgresql

    return str(EXECUTIONS.c[column].type.compile(dialect=postgresql.dialect()))


@functools.lru_cache(maxsize=256)
def end_executions_sql(columns: tuple[str, ...], rows: int) -> str:
    """PostgreSQL: set ``columns`` of ``rows`` executions, each to its own values, in one
    statement (``UPDATE ... FROM (VALUES ...)``); parameters per row: the id, then the columns
    (JSON columns as encoded text). Returns the ids it found, with :data:`WRITTEN_ELSEWHERE`."""
    names = ["id", *columns]
    row = "(" + ", ".join(f"CAST(%s AS {_pg_type(name)})" for name in names) + ")"
    assigned = ", ".join(f"{name} = v.{name}" for name in columns)
    return (
        f"UPDATE {EXECUTIONS.name} SET {assigned} FROM (VALUES {', '.join([row] * rows)}) AS v({', '.join(names)}) "
        f"WHERE {EXECUTIONS.name}.id = v.id RETURNING {EXECUTIONS.name}.id, "
        + ", ".join(f"{EXECUTIONS.name}.{name}" for name in WRITTEN_ELSEWHERE)
    )


JSON_COLUMNS = frozenset(name for name, column in EXECUTIONS.columns.items() if column.type.__class__.__name__ == "JSON")


def insert_logs_sql(bind: Engine | Connection) -> str:
    """The driver-level INSERT of log lines (see :func:`log_row`)."""
    mark = param_mark(bind)
    return f"INSERT INTO {LOGS.name} (execution_id, path, level, message, ts) VALUES ({', '.join([mark] * 5)})"


def log_row(line: dict[str, Any]) -> tuple[Any, ...]:
    return line["execution_id"], line["path"], line["level"], line["message"], line["ts"]
