"""The store: every read and write of flows, executions, step runs, logs and blobs.

One class, two databases: SQLite (WAL, the embedded default) and PostgreSQL, through the same
SQLAlchemy Core statements. Writes are short transactions committed before the engine moves on,
which is what makes an execution resumable.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql.elements import ClauseElement

from hub.core import keyset
from hub.errors import NotFound
from hub.store import migrations
from hub.store.labels import label_rows
from hub.store.lists import Cursor, list_executions
from hub.store.tables import Blob, Execution, ExecutionLabel, FlowRevision, LogLine, StepRun

if TYPE_CHECKING:
    from hub.settings import HubSettings

log = logging.getLogger(__name__)

EXECUTIONS = Execution.__table__  # type: ignore[attr-defined]
STEPS = StepRun.__table__  # type: ignore[attr-defined]
LOGS = LogLine.__table__  # type: ignore[attr-defined]
BLOBS = Blob.__table__  # type: ignore[attr-defined]
FLOWS = FlowRevision.__table__  # type: ignore[attr-defined]
# Hot-path statements are built once: SQLAlchemy then reuses their compiled form from its cache
# key, memoised on the statement (building one per call costs ~250 us of CPU in construction and
# cache-key generation). An UPDATE without .values() sets the columns named by the parameters.
_INSERT_STEP = STEPS.insert()
_INSERT_LOG = LOGS.insert()
_INSERT_EXECUTION = insert(EXECUTIONS)
_INSERT_LABELS = insert(ExecutionLabel.__table__)  # type: ignore[attr-defined]
_UPDATE_EXECUTION = update(EXECUTIONS).where(EXECUTIONS.c.id == bindparam("_execution_id"))
_UPDATE_EXECUTION_RETURNING = _UPDATE_EXECUTION.returning(*EXECUTIONS.c)
_UPDATE_STEP = update(STEPS).where(STEPS.c.id == bindparam("_step_id"))


def _claim_statement(start: bool) -> Any:
    values: dict[str, Any] = {"owner": bindparam("_owner"), "heartbeat_at": bindparam("_now"), "updated_at": bindparam("_now")}
    if start:
        values.update(state="RUNNING", started_at=func.coalesce(EXECUTIONS.c.started_at, bindparam("_now")))
    return (
        update(EXECUTIONS)
        .where(
            EXECUTIONS.c.id == bindparam("_execution_id"),
            or_(EXECUTIONS.c.owner.is_(None), EXECUTIONS.c.owner == bindparam("_owner")),
            # not state.in_(...): an IN list is expanded into the SQL at every execution
            or_(*(EXECUTIONS.c.state == state for state in ("CREATED", "QUEUED", "RUNNING"))),
        )
        .values(values)
        .returning(*EXECUTIONS.c)
    )


_CLAIM = {start: _claim_statement(start) for start in (True, False)}

AlongWrite = Callable[[Connection], None]
"""A write done in the transaction that creates an execution (see :meth:`Store.insert_executions`)."""


class Conflict(Exception):
    """Raised by an :data:`AlongWrite` when committed data forbids the write (a key already
    taken): the transaction is rolled back and the caller gets the exception as it was raised."""


_COLUMNS = {EXECUTIONS.name: frozenset(EXECUTIONS.columns.keys()), STEPS.name: frozenset(STEPS.columns.keys())}


def param_mark(bind: Engine | Connection) -> str:
    """The driver's placeholder for raw SQL (``exec_driver_sql``): ``?`` (sqlite3) or ``%s`` (psycopg)."""
    return "?" if bind.dialect.paramstyle == "qmark" else "%s"


def set_step_contexts(conn: Connection, execution_id: str, spans: Sequence[tuple[str, int, str, str]]) -> None:
    """Put ``(path, attempt, trace_id, span_id)`` on an execution's step runs: one prepared
    statement run by the driver's ``executemany`` (microseconds a step, not the tens a Core
    statement per row would cost)."""
    mark = param_mark(conn)
    sql = (
        f"UPDATE {STEPS.name} SET trace_id = {mark}, span_id = {mark} "
        f"WHERE execution_id = {mark} AND path = {mark} AND attempt = {mark}"
    )
    conn.exec_driver_sql(sql, [(trace_id, span_id, execution_id, path, attempt) for path, attempt, trace_id, span_id in spans])


def _plain(values: dict[str, Any], table: Any = EXECUTIONS) -> bool:
    """Whether every value is data (a prebuilt UPDATE can take it as a parameter). A key that is
    no column is an error, as it is for ``.values()`` (a prebuilt UPDATE would skip it silently)."""
    unknown = values.keys() - _COLUMNS[table.name]
    if unknown:
        raise ValueError(f"not columns of {table.name}: {sorted(unknown)}")
    return not any(isinstance(v, ClauseElement) for v in values.values())


def new_id() -> str:
    """Execution ids: time-ordered (UUIDv7), 32 hex characters."""
    return uuid.uuid7().hex if hasattr(uuid, "uuid7") else _uuid7()


def _uuid7() -> str:
    ms = int(time.time() * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms << 80) | (0x7 << 76) | ((rand >> 64) & 0xFFF) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return f"{value:032x}"


def process_owner() -> str:
    """Who runs an execution: ``host:pid:random`` (the random part tells restarts apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def owner_is_alive(owner: str | None) -> bool | None:
    """True/False when the owner ran on this host (its pid checked), None when it cannot be told."""
    if not owner:
        return False
    parts = owner.split(":")
    if len(parts) < 2 or parts[0] != socket.gethostname():
        return None
    try:
        pid = int(parts[1])
    except ValueError:
        return None
    if pid == os.getpid():
        return owner == _THIS_OWNER
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_THIS_OWNER = process_owner()


def this_owner() -> str:
    return _THIS_OWNER


class Store:
    """Persistence for the engine and the API. Create with :meth:`open`."""

    def __init__(self, engine: Engine, inline_limit: int = 64 * 1024, auto: Engine | None = None):
        self.engine = engine
        # single-statement writes need no explicit transaction: one round trip each, on a pool
        # of connections that stay in autocommit mode (switching per checkout costs more)
        self.auto = auto or engine
        self.inline_limit = inline_limit
        self.is_sqlite = engine.dialect.name == "sqlite"

    @classmethod
    def open(cls, url: str, inline_limit: int = 64 * 1024, migrate: bool = True) -> Store:
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://"):]
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1] if "///" in url else ""
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
            if path in ("", ":memory:"):
                kwargs["poolclass"] = StaticPool
            engine = create_engine(url, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
            auto = None
            if path not in ("", ":memory:"):
                auto = create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)
                event.listen(auto, "connect", _sqlite_pragmas)
        else:
            # no pre-ping (a round trip per checkout); connections are recycled instead
            engine = create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20)
            auto = create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20, isolation_level="AUTOCOMMIT")
        store = cls(engine, inline_limit, auto)
        if migrate:
            store.migrate()
        return store

    @classmethod
    def from_settings(cls, settings: HubSettings) -> Store:
        """The store the settings name (``HUB_DATABASE_URL``, else SQLite under ``HUB_HOME``)."""
        return cls.open(settings.resolved_database_url(), settings.inline_output_limit)

    def migrate(self, force: bool = False) -> list[str]:
        """Bring the schema to every history's head (:mod:`hub.store.migrations`): one query when
        it is there already (unless ``force``), else one locked transaction."""
        done = migrations.migrate(self.engine, force=force)
        for line in done:
            log.info("store: %s", line)
        return done

    def close(self) -> None:
        self.engine.dispose()
        if self.auto is not self.engine:
            self.auto.dispose()

    # -- flows -------------------------------------------------------------------------------------

    def save_flow(self, namespace: str, flow_id: str, source: str, content_hash: str) -> tuple[int, bool]:
        """Store a flow's source; returns ``(revision, created)``: a new revision only when it changed.
        A flow switched off through the API stays off on its new revision (in the same transaction)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(FLOWS.c.revision, FLOWS.c.content_hash, FLOWS.c.deleted, FLOWS.c.disabled)
                .where(FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id)
                .order_by(FLOWS.c.revision.desc())
                .limit(1)
            ).first()
            if row is not None and row.content_hash == content_hash and not row.deleted:
                return int(row.revision), False
            revision = (row.revision if row else 0) + 1
            conn.execute(
                insert(FLOWS).values(
                    namespace=namespace,
                    flow_id=flow_id,
                    revision=revision,
                    content_hash=content_hash,
                    source=source,
                    disabled=bool(row is not None and row.disabled and not row.deleted),
                    deleted=False,
                    created_at=time.time(),
                )
            )
            return revision, True

    def flow_head(self, namespace: str, flow_id: str) -> dict[str, Any]:
        """Revision number and flags of a flow's newest revision, without its source: the hot path
        of starting executions reads the parsed flow from the catalog's cache."""
        return self.newest_flow_row(namespace, flow_id, FLOWS.c.revision, FLOWS.c.disabled, FLOWS.c.deleted)

    def newest_flow_row(self, namespace: str, flow_id: str, *columns: Any) -> dict[str, Any]:
        """``columns`` (default: all) of a flow's newest revision; NotFound when deleted or absent."""
        with self.auto.connect() as conn:
            row = conn.execute(
                select(*(columns or (FLOWS,)))
                .where(FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id)
                .order_by(FLOWS.c.revision.desc())
                .limit(1)
            ).first()
        if row is None or row.deleted:
            raise NotFound(f"flow {namespace}.{flow_id} not found")
        return dict(row._mapping)

    def get_flow_source(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[int, str]:
        query = select(FLOWS.c.revision, FLOWS.c.source, FLOWS.c.deleted).where(
            FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id
        )
        if revision is not None:
            query = query.where(FLOWS.c.revision == revision)
        with self.auto.connect() as conn:
            row = conn.execute(query.order_by(FLOWS.c.revision.desc()).limit(1)).first()
        if row is None or (revision is None and row.deleted):
            raise NotFound(f"flow {namespace}.{flow_id} not found" + (f" at revision {revision}" if revision else ""))
        return int(row.revision), str(row.source)

    def list_flows(self) -> list[dict[str, Any]]:
        latest = (
            select(FLOWS.c.namespace, FLOWS.c.flow_id, func.max(FLOWS.c.revision).label("revision"))
            .group_by(FLOWS.c.namespace, FLOWS.c.flow_id)
            .subquery()
        )
        query = select(FLOWS).join(
            latest,
            and_(
                FLOWS.c.namespace == latest.c.namespace,
                FLOWS.c.flow_id == latest.c.flow_id,
                FLOWS.c.revision == latest.c.revision,
            ),
        ).where(FLOWS.c.deleted.is_(False)).order_by(FLOWS.c.namespace, FLOWS.c.flow_id)
        with self.auto.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- executions ----------------------------------------------------------------------------------

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
                full[column] = json.loads(json.dumps(full[column]))
        return full

    def insert_executions(self, rows: list[dict[str, Any]], along: Sequence[AlongWrite] = ()) -> None:
        """Insert execution rows in one transaction (all or none).

        ``along``: writes that belong to these executions (a webhook's idempotency claim), each
        called with the transaction's connection before the rows are inserted; committed with
        them or not at all. One that raises (:class:`Conflict`) aborts the whole transaction."""
        labels = label_rows(rows)
        if len(rows) == 1 and not along and not labels:  # one statement: autocommit, one round trip
            with self.auto.connect() as conn:
                conn.execute(_INSERT_EXECUTION, rows[0])
            return
        with self.engine.begin() as conn:
            for write in along:
                write(conn)
            conn.execute(_INSERT_EXECUTION, rows)
            if labels:
                conn.execute(_INSERT_LABELS, labels)

    def get_execution(self, execution_id: str) -> dict[str, Any]:
        with self.auto.connect() as conn:
            row = conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id)).first()
        if row is None:
            raise NotFound(f"execution {execution_id} not found")
        return dict(row._mapping)

    def find_execution(self, prefix: str) -> dict[str, Any]:
        """An execution by id or by an unambiguous id prefix (as the CLI accepts)."""
        with self.auto.connect() as conn:
            rows = conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id.startswith(prefix)).limit(2)).all()
        if not rows:
            raise NotFound(f"execution {prefix} not found")
        if len(rows) > 1:
            raise NotFound(f"execution id prefix {prefix!r} is ambiguous; give more characters")
        return dict(rows[0]._mapping)

    def update_execution(self, execution_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        with self.auto.connect() as conn:
            if _plain(values):
                conn.execute(_UPDATE_EXECUTION, {**values, "_execution_id": execution_id})
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
            row = conn.execute(_CLAIM[start], {"_execution_id": execution_id, "_owner": owner, "_now": now}).first()
        if row is None:
            return None
        data = dict(row._mapping)
        # a replay copies step runs into a new execution: it has something to replay
        fresh = data["restarted_from"] is None
        if start:
            return data, fresh and data["started_at"] == now
        return data, fresh and data["started_at"] is None

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

    # -- step runs ---------------------------------------------------------------------------------

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
            _plain(execution_values)
            with self.engine.begin() as conn:
                result = conn.execute(_INSERT_STEP, values)
                conn.execute(_UPDATE_EXECUTION, {**execution_values, "_execution_id": execution_id})
                return int(result.inserted_primary_key[0])  # type: ignore[index]
        with self.auto.connect() as conn:
            result = conn.execute(_INSERT_STEP, values)
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
        values.update(self._output_values(output, execution_id))
        if data is not None:
            values["data"] = data
        _plain(values, STEPS)
        with self.auto.connect() as conn:
            conn.execute(_UPDATE_STEP, {**values, "_step_id": step_id})

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
    ) -> dict[str, Any]:
        """A finished step run as a row, for :meth:`write_batch` (large outputs become blobs now)."""
        values = dict(
            execution_id=execution_id,
            path=path,
            task_id=task_id,
            task_type=task_type,
            attempt=attempt,
            state=state,
            params=params,
            error=error,
            data=data,
            started_at=started_at,
            ended_at=ended_at or time.time(),
        )
        values.update(self._output_values(output, execution_id))
        return values

    def write_batch(
        self,
        steps: list[dict[str, Any]],
        logs: list[dict[str, Any]],
        execution: tuple[str, dict[str, Any]] | None = None,
        step_contexts: Sequence[tuple[str, int, str, str]] = (),
    ) -> dict[str, Any] | None:
        """Step runs and log lines in one transaction, optionally with an execution update
        (returned as it now is) and trace contexts for its step runs (see
        :func:`set_step_contexts`)."""
        row = None
        with self.engine.begin() as conn:
            if steps:
                conn.execute(_INSERT_STEP, steps)
            if logs:
                conn.execute(_INSERT_LOG, logs)
            if step_contexts and execution is not None:
                set_step_contexts(conn, execution[0], step_contexts)
            if execution is not None:
                execution_id, values = execution
                values = {**values, "updated_at": time.time()}
                if _plain(values):
                    found = conn.execute(_UPDATE_EXECUTION_RETURNING, {**values, "_execution_id": execution_id}).first()
                else:
                    found = conn.execute(
                        update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(**values).returning(*EXECUTIONS.c)
                    ).first()
                if found is None:
                    raise NotFound(f"execution {execution_id} not found")
                row = dict(found._mapping)
        return row

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
            conn.execute(_UPDATE_STEP, {"data": data, "_step_id": step_id})

    def _output_values(self, output: Any, execution_id: str | None) -> dict[str, Any]:
        if output is None:
            return {"output": None, "output_ref": None}
        encoded = json.dumps(output, default=str, separators=(",", ":"))
        if len(encoded) <= self.inline_limit:
            return {"output": output, "output_ref": None}
        ref = self.put_blob(encoded.encode(), execution_id=execution_id)
        return {"output": {"$blob": ref, "size": len(encoded)}, "output_ref": ref}

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

    def load_output(self, row: dict[str, Any]) -> Any:
        if row.get("output_ref"):
            return json.loads(self.get_blob(row["output_ref"]))
        return row.get("output")

    def copy_steps(self, source_id: str, target_id: str, paths: set[str]) -> None:
        """Copy the successful step runs at ``paths`` into another execution (for restart/replay)."""
        rows = [r for r in self.step_runs(source_id) if r["path"] in paths and r["state"] in ("SUCCESS", "WARNING", "SKIPPED")]
        if not rows:
            return
        with self.engine.begin() as conn:
            conn.execute(
                _INSERT_STEP, [{**{k: v for k, v in row.items() if k != "id"}, "execution_id": target_id} for row in rows]
            )

    # -- logs ----------------------------------------------------------------------------------------

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

    # -- blobs ---------------------------------------------------------------------------------------

    def put_blob(self, data: bytes, execution_id: str | None = None, content_type: str = "application/json") -> str:
        blob_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(
                insert(BLOBS).values(
                    id=blob_id,
                    execution_id=execution_id,
                    content_type=content_type,
                    size=len(data),
                    data=data,
                    created_at=time.time(),
                )
            )
        return blob_id

    def get_blob(self, blob_id: str) -> bytes:
        with self.auto.connect() as conn:
            row = conn.execute(select(BLOBS.c.data).where(BLOBS.c.id == blob_id)).first()
        if row is None:
            raise NotFound(f"blob {blob_id} not found")
        return bytes(row[0])


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
