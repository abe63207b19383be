"""Step runs (one row per attempt of a step) and the execution's log lines."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Connection, insert, select, update

from hub.core import keyset
from hub.errors import NotFound
from hub.store.blobs import BlobStore
from hub.store.json_text import json_text
from hub.store.statements import (
    EXECUTIONS,
    INSERT_LOG,
    INSERT_STEP,
    JSON_COLUMNS,
    LOGS,
    STEPS,
    TRANSIENT_DB,
    UPDATE_EXECUTION,
    UPDATE_EXECUTION_ENDED,
    UPDATE_EXECUTION_RETURNING,
    UPDATE_STEP,
    WRITTEN_ELSEWHERE,
    EndWrite,
    StepRow,
    columns_of,
    end_executions_sql,
    insert_logs_sql,
    insert_many_steps_sql,
    insert_steps_sql,
    log_row,
    plain,
    set_many_step_contexts,
    set_step_context_sql,
    set_step_contexts,
)


class StepStore(BlobStore):
    """The step runs and log lines of a store (outputs past the inline limit become blobs)."""

    def start_step(
        self,
        execution_id: str,
        path: str,
        task_id: str,
        task_type: str,
        attempt: int,
        params: Any,
        started_at: float,
        data: dict[str, Any] | None = None,
        execution_values: dict[str, Any] | None = None,
    ) -> int:
        """A step run starts (RUNNING); with ``execution_values``, columns of the execution row
        are updated in the same transaction."""
        values = {
            "execution_id": execution_id,
            "path": path,
            "task_id": task_id,
            "task_type": task_type,
            "attempt": attempt,
            "state": "RUNNING",
            "params": params,
            "data": data,
            "started_at": started_at,
        }
        if execution_values:
            plain(execution_values)
            with self.engine.begin() as conn:
                result = conn.execute(INSERT_STEP, values)
                conn.execute(UPDATE_EXECUTION, {**execution_values, "_execution_id": execution_id})
                return int(result.inserted_primary_key[0])  # type: ignore[index]
        with self.auto.connect() as conn:
            result = conn.execute(INSERT_STEP, values)
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_step(
        self,
        step_id: int,
        state: str,
        *,
        output: Any = None,
        error: dict[str, Any] | None = None,
        ended_at: float | None = None,
        data: dict[str, Any] | None = None,
        execution_id: str | None = None,
    ) -> None:
        values: dict[str, Any] = {"state": state, "error": error, "ended_at": ended_at or time.time()}
        values.update(self.output_values(output, execution_id))
        if data is not None:
            values["data"] = data
        plain(values, STEPS)
        with self.auto.connect() as conn:
            conn.execute(UPDATE_STEP, {**values, "_step_id": step_id})

    def step_values(
        self,
        execution_id: str,
        path: str,
        task_id: str,
        task_type: str,
        attempt: int,
        state: str,
        *,
        params: Any = None,
        output: Any = None,
        error: dict[str, Any] | None = None,
        started_at: float,
        ended_at: float | None = None,
        data: dict[str, Any] | None = None,
    ) -> StepRow:
        """A finished step run as a row, for :meth:`write_batch`: a :data:`STEP_ROW` tuple with its
        JSON columns encoded once, here (a large output becomes a blob now)."""
        output_text, output_ref = self.encoded_output(output, execution_id)
        return (
            execution_id, path, task_id, task_type, attempt, state, json_text(params), output_text, output_ref,
            json_text(error), json_text(data), started_at, ended_at or time.time(),
        )

    def write_batch(
        self,
        steps: list[StepRow],
        logs: list[dict[str, Any]],
        execution: tuple[str, dict[str, Any]] | None = None,
        step_contexts: Sequence[tuple[str, int, str, str]] = (),
        returning: bool | tuple[str, ...] = True,
    ) -> dict[str, Any] | None:
        """Step runs (from :meth:`step_values`) and log lines in one transaction, optionally with
        an execution update and trace contexts for its step runs (see :func:`set_step_contexts`).
        With an update, ``returning`` says what comes back: the row as it now is (True), nothing
        (False), or the named columns (a tuple, e.g. :data:`WRITTEN_ELSEWHERE`; SQLite gives the
        whole row for it). NotFound if no row has the id."""
        if self.is_sqlite and (execution is None or plain(execution[1])):
            return self._write_rows(steps, logs, execution, step_contexts, bool(returning))  # the driver only
        with self.engine.begin() as conn:
            self._insert_rows(conn, steps, logs)
            if step_contexts and execution is not None:
                set_step_contexts(conn, execution[0], step_contexts)
            if execution is None:
                return None
            return _update_returning(conn, *execution, returning)

    def end_executions(self, ends: Sequence[EndWrite]) -> list[dict[str, Any] | Exception]:
        """The ends of many executions (their held-back rows and the update of their row) in one
        transaction: on PostgreSQL one INSERT for all the step runs and one ``UPDATE ... FROM
        unnest(...)`` per set of columns. Per end, its :data:`WRITTEN_ELSEWHERE` columns or the
        error it met: when the whole transaction fails on data (a row the database refuses, an
        id that is gone), each end is written again alone, so one execution's fault is its own;
        a connection that fails raises (every end of the batch is left unwritten)."""
        if self.is_sqlite or len(ends) == 1 or not all(plain(end.values) for end in ends):
            return [self._end_one(end) for end in ends]
        try:
            with self.engine.begin() as conn:
                self._insert_rows(conn, [row for end in ends for row in end.steps], [line for end in ends for line in end.logs])
                set_many_step_contexts(conn, [(end.execution_id, *span) for end in ends for span in end.contexts])
                written: dict[str, dict[str, Any]] = {}
                groups: dict[tuple[str, ...], list[EndWrite]] = {}
                for end in ends:
                    groups.setdefault(tuple(sorted(end.values)), []).append(end)
                for columns, group in groups.items():
                    params = columns_of([(end.execution_id, *_encoded(end.values, columns)) for end in group])
                    found = conn.exec_driver_sql(end_executions_sql(columns), params).all()
                    if len(found) != len(group):
                        raise NotFound("an execution of the batch is gone")
                    for execution_id, *columns_read in found:
                        written[execution_id] = dict(zip(WRITTEN_ELSEWHERE, columns_read, strict=True))
        except TRANSIENT_DB:
            raise
        except Exception:  # one end's fault: find it, keep the others
            return [self._end_one(end) for end in ends]
        return [written[end.execution_id] for end in ends]

    def _end_one(self, end: EndWrite) -> dict[str, Any] | Exception:
        try:
            row = self.write_batch(
                end.steps, end.logs, (end.execution_id, end.values), end.contexts, returning=WRITTEN_ELSEWHERE
            ) or {}
            return {name: row.get(name) for name in WRITTEN_ELSEWHERE}  # (SQLite read the whole row)
        except TRANSIENT_DB:
            raise
        except Exception as exc:
            return exc

    def _insert_rows(self, conn: Connection, steps: list[StepRow], logs: list[dict[str, Any]]) -> None:
        """Step runs (on PostgreSQL one statement for them all) and log lines."""
        if len(steps) == 1 or (steps and self.is_sqlite):
            conn.exec_driver_sql(self._insert_steps, steps[0] if len(steps) == 1 else steps)
        elif steps:
            conn.exec_driver_sql(insert_many_steps_sql(), columns_of(steps))
        if logs:
            conn.execute(INSERT_LOG, logs)

    def _write_rows(
        self,
        steps: list[StepRow],
        logs: list[dict[str, Any]],
        execution: tuple[str, dict[str, Any]] | None = None,
        step_contexts: Sequence[tuple[str, int, str, str]] = (),
        returning: bool = False,
    ) -> dict[str, Any] | None:
        """:meth:`write_batch` on SQLite, in one transaction on the store's writer connection: one
        prepared statement each, JSON encoded here as Core would (a third of the CPU the same
        write costs through SQLAlchemy Core and a pool checkout). Driver errors are raised as
        SQLAlchemy raises them."""
        with self.writer_use() as conn:
            if len(steps) == 1:
                conn.execute(self._insert_steps, steps[0])
            elif steps:
                conn.executemany(self._insert_steps, steps)
            if logs:
                conn.executemany(self._insert_logs, [log_row(line) for line in logs])
            row = None
            if execution is not None:
                if step_contexts:
                    conn.executemany(_SET_STEP_CONTEXT_SQLITE, [(t, s, execution[0], p, a) for p, a, t, s in step_contexts])
                row = _update_execution(conn, *execution, returning)
            conn.commit()
            return row

    @functools.cached_property
    def _insert_steps(self) -> str:
        return insert_steps_sql(self.engine)

    @functools.cached_property
    def _insert_logs(self) -> str:
        return insert_logs_sql(self.engine)

    def end_open_steps(self, execution_id: str, state: str) -> None:
        """End every RUNNING or PAUSED step run of an execution in ``state`` (it was killed)."""
        with self.auto.connect() as conn:
            conn.execute(
                update(STEPS)
                .where(STEPS.c.execution_id == execution_id, STEPS.c.state.in_(("RUNNING", "PAUSED")))
                .values(state=state, ended_at=time.time())
            )

    def update_step_data(self, step_id: int, data: dict[str, Any]) -> None:
        with self.auto.connect() as conn:
            conn.execute(UPDATE_STEP, {"data": data, "_step_id": step_id})

    def step_runs(self, execution_id: str) -> list[dict[str, Any]]:
        with self.auto.connect() as conn:
            rows = conn.execute(
                select(STEPS).where(STEPS.c.execution_id == execution_id).order_by(STEPS.c.id)
            )
            return [dict(r._mapping) for r in rows]

    def latest_steps(self, execution_id: str) -> dict[str, dict[str, Any]]:
        """The newest attempt of each step path (what a resume replays from)."""
        latest: dict[str, dict[str, Any]] = {}
        for row in self.step_runs(execution_id):
            latest[row["path"]] = row
        return latest

    def copy_steps(self, source_id: str, target_id: str, paths: set[str]) -> None:
        """Copy the successful step runs at ``paths`` into another execution (for restart/replay)."""
        rows = [r for r in self.step_runs(source_id) if r["path"] in paths and r["state"] in ("SUCCESS", "WARNING", "SKIPPED")]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                INSERT_STEP, [{**{k: v for k, v in row.items() if k != "id"}, "execution_id": target_id} for row in rows]
            )

    def add_log(self, execution_id: str, level: str, message: str, path: str | None = None) -> None:
        with self.auto.connect() as conn:
            conn.execute(
                insert(LOGS).values(execution_id=execution_id, path=path, level=level, message=message, ts=time.time())
            )

    def logs(self, execution_id: str, limit: int = 1000, after: list[Any] | None = None) -> list[dict[str, Any]]:
        """An execution's log lines, oldest first, after the line ``after[0]``."""
        query = select(LOGS).where(LOGS.c.execution_id == execution_id)
        with self.auto.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, ((LOGS.c.id, False),), after, limit))]


_EXECUTION_JSON = frozenset(c.name for c in EXECUTIONS.columns if isinstance(c.type, JSON))
_SET_STEP_CONTEXT_SQLITE = set_step_context_sql("?")


def _update_returning(
    conn: Connection, execution_id: str, values: dict[str, Any], returning: bool | tuple[str, ...]
) -> dict[str, Any] | None:
    """Columns of one execution row through SQLAlchemy (PostgreSQL), reading back what
    ``returning`` asks (see :meth:`StepStore.write_batch`). NotFound when it is not there."""
    values = {**values, "updated_at": values.get("updated_at") or time.time()}
    if returning is True:
        columns = list(EXECUTIONS.c)
    else:
        columns = [EXECUTIONS.c[name] for name in (returning or ("id",))]
    if plain(values) and returning is True:
        found = conn.execute(UPDATE_EXECUTION_RETURNING, {**values, "_execution_id": execution_id}).first()
    elif plain(values) and returning == WRITTEN_ELSEWHERE:
        found = conn.execute(UPDATE_EXECUTION_ENDED, {**values, "_execution_id": execution_id}).first()
    else:
        statement = update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(**values)
        found = conn.execute(statement.returning(*columns)).first()
    if found is None:
        raise NotFound(f"execution {execution_id} not found")
    return dict(found._mapping) if returning else None


def _update_execution(conn: Any, execution_id: str, values: dict[str, Any], returning: bool) -> dict[str, Any] | None:
    """Columns of one execution row on a SQLite driver connection; the row as it now is (JSON
    decoded, as a Core ``RETURNING`` gives it) when ``returning``. NotFound when it is not there."""
    values = {**values, "updated_at": time.time()}
    params = [json_text(v) if k in _EXECUTION_JSON else v for k, v in values.items()]
    cursor = conn.execute(_update_execution_sql(tuple(values), returning), (*params, execution_id))
    found = cursor.fetchone() if returning else None
    if (found is None) if returning else cursor.rowcount == 0:
        raise NotFound(f"execution {execution_id} not found")
    if found is None:
        return None
    names = [d[0] for d in cursor.description]
    return {k: json.loads(v) if k in _EXECUTION_JSON and v is not None else v for k, v in zip(names, found, strict=True)}


@functools.lru_cache(maxsize=64)
def _update_execution_sql(columns: tuple[str, ...], returning: bool) -> str:
    """``UPDATE executions SET <columns> WHERE id = ? [RETURNING *]`` for the SQLite driver."""
    assignments = ", ".join(f'"{name}" = ?' for name in columns)
    every = ", ".join(f'"{c.name}"' for c in EXECUTIONS.columns)
    return f"UPDATE {EXECUTIONS.name} SET {assignments} WHERE id = ?" + (f" RETURNING {every}" if returning else "")


def _encoded(values: dict[str, Any], columns: Sequence[str]) -> list[Any]:
    """``values`` of ``columns`` as parameters of :func:`end_executions_sql` (JSON as text)."""
    return [json_text(values[name]) if name in JSON_COLUMNS else values[name] for name in columns]
