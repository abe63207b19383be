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


def insert_steps_sql(bind: Engine | Connection) -> str:
    """The driver-level INSERT of a :data:`STEP_ROW` tuple: one prepared statement, no SQLAlchemy
    compilation or JSON processing per row (the JSON columns arrive encoded)."""
    mark = param_mark(bind)
    cast = bind.dialect.name != "sqlite"  # PostgreSQL: text parameters into json columns
    values = ", ".join(f"CAST({mark} AS JSON)" if cast and column in _STEP_JSON else mark for column in STEP_ROW)
    return f"INSERT INTO {STEPS.name} ({', '.join(STEP_ROW)}) VALUES ({values})"


# Statements of many rows on PostgreSQL take one array per column, unnested into rows, so their
# text is the same however many rows they carry: one round trip where the driver's
# ``executemany`` would pipeline a statement per row, and one compiled and prepared form. (With
# ``VALUES (...), (...)`` each row count was a statement of its own, and every count a worker
# met stayed in the driver's and the hub's caches: ~1 MiB of a busy worker.)


def columns_of(rows: Sequence[Sequence[Any]]) -> tuple[list[Any], ...]:
    """The parameters of an unnested statement: rows as one list per column; a column of ints and
    floats mixed (whole seconds among times) all floats, since psycopg refuses to dump a list of
    mixed types."""
    return tuple(_one_type(list(column)) for column in zip(*rows, strict=True))


def _one_type(values: list[Any]) -> list[Any]:
    kinds = {type(value) for value in values}
    if float in kinds and int in kinds:
        return [None if value is None else float(value) for value in values]
    return values


def _pg_type(table: Any, column: str) -> str:
    from sqlalchemy.dialects import postgresql

    return str(table.c[column].type.compile(dialect=postgresql.dialect()))


def _unnest(table: Any, names: Sequence[str], text: frozenset[str]) -> str:
    """``unnest(...) AS v(names)``: one array parameter per column, of the column's type (of
    ``text`` for the ``text`` columns, JSON encoded: cast where they are used)."""
    # %b: binary arrays (as text, psycopg quotes and escapes every element in Python, which
    # costs more than the rows' VALUES did for JSON-heavy columns)
    arrays = ", ".join(f"CAST(%b AS {'TEXT' if name in text else _pg_type(table, name)}[])" for name in names)
    return f"unnest({arrays}) AS v({', '.join(names)})"


@functools.cache
def insert_many_steps_sql() -> str:
    """PostgreSQL: the INSERT of any number of :data:`STEP_ROW` tuples in one statement
    (parameters: :func:`columns_of` the rows)."""
    selected = ", ".join(f"CAST(v.{name} AS JSON)" if name in _STEP_JSON else f"v.{name}" for name in STEP_ROW)
    return (f"INSERT INTO {STEPS.name} ({', '.join(STEP_ROW)}) SELECT {selected} "
            f"FROM {_unnest(STEPS, STEP_ROW, _STEP_JSON)}")


@functools.lru_cache(maxsize=64)
def end_executions_sql(columns: tuple[str, ...]) -> str:
    """PostgreSQL: set ``columns`` of any number of executions, each to its own values, in one
    statement (``UPDATE ... FROM unnest(...)``); parameters: :func:`columns_of` rows of the id,
    then the columns (JSON columns as encoded text). Returns the ids it found, with
    :data:`WRITTEN_ELSEWHERE`."""
    json_columns = frozenset(columns) & JSON_COLUMNS
    assigned = ", ".join(f"{name} = CAST(v.{name} AS JSON)" if name in json_columns else f"{name} = v.{name}"
                         for name in columns)
    return (
        f"UPDATE {EXECUTIONS.name} SET {assigned} FROM {_unnest(EXECUTIONS, ['id', *columns], json_columns)} "
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
