"""Executions: created, claimed by one process at a time, started, listed and ended."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, func, or_, select, update

from hub.errors import NotFound
from hub.store.base import StoreBase
from hub.store.ids import new_id
from hub.store.json_text import as_stored, json_text
from hub.store.labels import label_rows
from hub.store.lists import Cursor, list_executions
from hub.store.statements import (
    CLAIM,
    CLAIM_MANY,
    EXECUTIONS,
    INSERT_EXECUTION,
    INSERT_LABELS,
    UPDATE_EXECUTION,
    AlongWrite,
    plain,
)


class ExecutionStore(StoreBase):
    """The execution rows of a store."""

    def create_execution(self, **fields: Any) -> str:
        """Insert one new execution (the keywords of :meth:`execution_row`); returns its id."""
        row = self.execution_row(**fields)
        self.insert_executions([row])
        return str(row["id"])

    @staticmethod
    def execution_row(
        *,
        namespace: str,
        flow_id: str,
        revision: int,
        inputs: dict[str, Any],
        state: str,
        labels: dict[str, Any] | None = None,
        trigger: dict[str, Any] | None = None,
        parent_id: str | None = None,
        parent_path: str | None = None,
        restarted_from: str | None = None,
        execution_id: str | None = None,
    ) -> dict[str, Any]:
        """A new execution's row, for :meth:`insert_executions`."""
        now = time.time()
        return {
            "id": execution_id or new_id(), "namespace": namespace, "flow_id": flow_id,
            "revision": revision, "state": state, "inputs": inputs, "labels": labels or {},
            "trigger": trigger, "parent_id": parent_id, "parent_path": parent_path,
            "restarted_from": restarted_from, "created_at": now, "updated_at": now,
        }

    @staticmethod
    def full_execution_row(row: dict[str, Any]) -> dict[str, Any]:
        """``row`` (from :meth:`execution_row`) as reading it back would give it: every column,
        JSON values as they come out of the database (tuples as lists, keys as strings)."""
        full = dict.fromkeys(EXECUTIONS.columns.keys())
        full.update(row)
        for column in ("inputs", "labels", "trigger"):
            if full[column] is not None:
                full[column] = as_stored(full[column])
        return full

    def insert_executions(self, rows: list[dict[str, Any]], along: Sequence[AlongWrite] = ()) -> None:
        """Insert execution rows in one transaction (all or none).

        ``along``: writes that belong to these executions (a webhook's idempotency claim), each
        called with the transaction's connection before the rows are inserted; committed with
        them or not at all. One that raises (:class:`Conflict`) aborts the whole transaction."""
        labels = label_rows(rows)
        if len(rows) == 1 and not along and not labels and self.is_sqlite:
            self._insert_row(rows[0])
            return
        if len(rows) == 1 and not along and not labels:  # one statement: autocommit, one round trip
            with self.auto.connect() as conn:
                conn.execute(INSERT_EXECUTION, rows[0])
            return
        with self.engine.begin() as conn:
            for write in along:
                write(conn)
            conn.execute(INSERT_EXECUTION, rows)
            if labels:
                conn.execute(INSERT_LABELS, labels)

    def _insert_row(self, row: dict[str, Any]) -> None:
        """One execution row on SQLite's writer connection: a prepared statement, its JSON columns
        encoded here as the Core statement would (a third of the CPU of a Core insert; an
        enrichment call or a `hub run` makes one). A duplicate id is an IntegrityError."""
        columns = tuple(row)
        self.insert_row(_insert_sql(columns), [json_text(row[c]) if c in _JSON_COLUMNS else row[c] for c in columns])

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        with self.auto.connect() as conn:
            row = conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id)).first()
        if row is None:
            raise NotFound(f"execution {execution_id} not found")
        return dict(row._mapping)

    def find_execution(self, prefix: str) -> dict[str, Any]:
        """An execution by id or by an unambiguous id prefix (as the CLI accepts)."""
        with self.auto.connect() as conn:
            rows = conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id.startswith(prefix, autoescape=True)).limit(2)).all()
        if not rows:
            raise NotFound(f"execution {prefix} not found")
        if len(rows) > 1:
            raise NotFound(f"execution id prefix {prefix!r} is ambiguous; give more characters")
        return dict(rows[0]._mapping)

    def update_execution(self, execution_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        with self.auto.connect() as conn:
            if plain(values):
                conn.execute(UPDATE_EXECUTION, {**values, "_execution_id": execution_id})
            else:
                conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(**values))

    def claim_fresh(self, execution_id: str, owner: str, start: bool) -> tuple[dict[str, Any], bool] | None:
        """The fast path of taking an execution: one conditional UPDATE ... RETURNING.

        Succeeds when nobody else owns it and it has not ended; with ``start`` it also moves it
        to RUNNING. Returns ``(row, first_run)`` — ``first_run`` when it had never started, so
        it has no step runs to replay — or None (then take the careful path).
        """
        now = time.time()
        with self.auto.connect() as conn:
            row = conn.execute(CLAIM[start], {"_execution_id": execution_id, "_owner": owner, "_now": now}).first()
        return None if row is None else _claimed(dict(row._mapping), start, now)

    def claim_fresh_many(
        self, requests: Sequence[tuple[str, bool]], owner: str
    ) -> list[tuple[dict[str, Any], bool] | None]:
        """:meth:`claim_fresh` for many ``(execution id, start)`` at once, in their order: on
        PostgreSQL one statement for those to start and one for the others (``id = ANY(...)``),
        elsewhere one claim each. Each id once (a repeated one would get its row twice)."""
        if self.is_sqlite or len(requests) == 1:
            return [self.claim_fresh(execution_id, owner, start) for execution_id, start in requests]
        now = time.time()
        found: dict[tuple[str, bool], tuple[dict[str, Any], bool]] = {}
        with self.auto.connect() as conn:
            for start in (True, False):
                ids = [execution_id for execution_id, wanted in requests if wanted is start]
                if ids:
                    for row in conn.execute(CLAIM_MANY[start], {"_ids": ids, "_owner": owner, "_now": now}):
                        data = dict(row._mapping)
                        found[(data["id"], start)] = _claimed(data, start, now)
        return [found.get(request) for request in requests]

    def claim_execution(self, execution_id: str, owner: str, expected: Iterable[str | None]) -> bool:
        """Take ownership if the current owner is one of ``expected`` (compare-and-set)."""
        expected = list(expected)
        conds = [EXECUTIONS.c.owner == e for e in expected if e is not None]
        if None in expected:
            conds.append(EXECUTIONS.c.owner.is_(None))
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(EXECUTIONS)
                .where(EXECUTIONS.c.id == execution_id, or_(*conds))
                .values(owner=owner, heartbeat_at=now, updated_at=now)
            )
        return bool(result.rowcount)

    def heartbeat(self, owner: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(EXECUTIONS)
                .where(EXECUTIONS.c.owner == owner, EXECUTIONS.c.state.in_(("RUNNING", "QUEUED")))
                .values(heartbeat_at=time.time())
            )

    def list_executions(
        self,
        *,
        namespace: str | None = None,
        flow_id: str | None = None,
        states: Iterable[str] | None = None,
        label: tuple[str, str] | None = None,
        since: float | None = None,
        until: float | None = None,
        parent_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
        after: Cursor | None = None,
    ) -> list[dict[str, Any]]:
        """Executions newest first, filtered (see :func:`hub.store.lists.list_executions`)."""
        with self.auto.connect() as conn:
            return list_executions(
                conn, namespace=namespace, flow_id=flow_id, states=states, label=label, since=since, until=until,
                parent_id=parent_id, limit=limit, offset=offset, after=after,
            )

    def killing(self, execution_ids: Iterable[str]) -> set[str]:
        """Which of ``execution_ids`` another process asked to stop (state KILLING)."""
        ids = list(execution_ids)
        if not ids:
            return set()
        with self.auto.connect() as conn:
            rows = conn.execute(
                select(EXECUTIONS.c.id).where(EXECUTIONS.c.id.in_(ids), EXECUTIONS.c.state == "KILLING")
            )
            return {r[0] for r in rows}

    def try_start(
        self, execution_id: str, namespace: str, flow_id: str, limit: int | None
    ) -> dict[str, Any] | None:
        """Move an execution to RUNNING if its flow has fewer than ``limit`` running (atomic across
        processes: one statement under SQLite's writer lock, an advisory lock on PostgreSQL).
        Returns the execution row, or None when the limit is reached."""
        now = time.time()
        with (self.engine.begin() if limit is not None else self.auto.connect()) as conn:
            if limit is not None and not self.is_sqlite:
                conn.execute(
                    select(func.pg_advisory_xact_lock(func.hashtext(namespace + "." + flow_id)))
                )
            stmt = update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id)
            if limit is not None:
                other = EXECUTIONS.alias("running")
                running = (
                    select(func.count())
                    .select_from(other)
                    .where(other.c.namespace == namespace, other.c.flow_id == flow_id, other.c.state == "RUNNING")
                    .scalar_subquery()
                )
                stmt = stmt.where(running < limit)
            row = conn.execute(
                stmt.values(state="RUNNING", started_at=func.coalesce(EXECUTIONS.c.started_at, now), updated_at=now)
                .returning(*EXECUTIONS.c)
            ).first()
        return dict(row._mapping) if row is not None else None

    def next_queued(self, namespace: str, flow_id: str, limit: int = 10) -> list[str]:
        with self.auto.connect() as conn:
            rows = conn.execute(
                select(EXECUTIONS.c.id)
                .where(
                    EXECUTIONS.c.namespace == namespace,
                    EXECUTIONS.c.flow_id == flow_id,
                    EXECUTIONS.c.state == "QUEUED",
                )
                .order_by(EXECUTIONS.c.created_at)
                .limit(limit)
            )
            return [r[0] for r in rows]

    def due_paused(self, now: float) -> list[str]:
        with self.auto.connect() as conn:
            rows = conn.execute(
                select(EXECUTIONS.c.id).where(
                    EXECUTIONS.c.state == "PAUSED", EXECUTIONS.c.resume_at.is_not(None), EXECUTIONS.c.resume_at <= now
                )
            )
            return [r[0] for r in rows]

    def unfinished_executions(self) -> list[dict[str, Any]]:
        """Executions that were QUEUED or RUNNING (candidates for resume)."""
        with self.auto.connect() as conn:
            rows = conn.execute(
                select(EXECUTIONS)
                .where(EXECUTIONS.c.state.in_(("CREATED", "QUEUED", "RUNNING")))
                .order_by(EXECUTIONS.c.created_at)
            )
            return [dict(r._mapping) for r in rows]


_JSON_COLUMNS = frozenset(c.name for c in EXECUTIONS.columns if isinstance(c.type, JSON))


@functools.lru_cache(maxsize=32)
def _insert_sql(columns: tuple[str, ...]) -> str:
    """``INSERT INTO executions (<columns>)`` for the SQLite driver (qmark)."""
    names = ", ".join(f'"{c}"' for c in columns)
    return f"INSERT INTO {EXECUTIONS.name} ({names}) VALUES ({', '.join('?' * len(columns))})"


def _claimed(data: dict[str, Any], start: bool, now: float) -> tuple[dict[str, Any], bool]:
    """A claimed row and whether this is its first run (it has no step runs to replay)."""
    fresh = data["restarted_from"] is None  # a replay copies step runs into a new execution
    if start:
        return data, fresh and data["started_at"] == now
    return data, fresh and data["started_at"] is None
