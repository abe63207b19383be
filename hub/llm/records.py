"""Every LLM call is a record; the response cache lives next to it."""

from __future__ import annotations

import functools
import hashlib
import json
import time
import weakref
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import JSON, ColumnDefault, Engine, delete, func, insert, literal, select, text, update

from hub.core import keyset
from hub.core.host import MODEL_USAGE, provide
from hub.llm.tables import LLM_CACHE as CACHE
from hub.llm.tables import LLM_CALLS as CALLS
from hub.store.ensure import ensure_tables
from hub.store.json_text import json_text

_CALL_COLUMNS = {c.name for c in CALLS.columns} - {"id"}
_DEFAULTS = {c.name: c.default.arg for c in CALLS.columns if isinstance(c.default, ColumnDefault) and c.default.is_scalar}
_JSON_COLUMNS = frozenset(c.name for c in CALLS.columns if isinstance(c.type, JSON))
CACHE_PURGE_EVERY = 60.0  # seconds between two removals of expired cache entries by one process
_purged: weakref.WeakKeyDictionary[Engine, float] = weakref.WeakKeyDictionary()  # engine -> last removal


@runtime_checkable
class RowWriter(Protocol):
    """What :class:`CallLog` needs of the hub's store to write on its SQLite writer connection."""

    is_sqlite: bool

    def insert_row(self, sql: str, params: Sequence[Any]) -> int: ...
    def write_sql(self, sql: str, params: Sequence[Any]) -> None: ...
    def fetch_row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None: ...


_WRITERS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()  # store -> is a RowWriter


def _writes_rows(store: Any) -> bool:
    """``isinstance(store, RowWriter)``, remembered per store: a model step asks on every call,
    and the check against a runtime protocol costs ~10 µs (most of the call's bookkeeping)."""
    try:
        found = _WRITERS.get(store)
    except TypeError:  # (an object that cannot be weakly referenced: checked each time)
        return isinstance(store, RowWriter)
    if found is None:
        found = _WRITERS[store] = isinstance(store, RowWriter)
    return found


class CallLog:
    """Writes and reads ``llm_calls`` and ``llm_cache`` on the store's engine."""

    def __init__(self, engine: Engine, store: RowWriter | None = None):
        """``store``: the hub's store on ``engine``; on SQLite a record is written on its writer
        connection (see :meth:`record`)."""
        self.engine = engine
        self.writer = store if store is not None and store.is_sqlite else None
        ensure_tables(engine, CALLS, CACHE)

    @classmethod
    def for_store(cls, store: Any) -> CallLog:
        """The log on a store's engine, writing on its SQLite writer connection when it has one
        (every writer of model calls uses this, so a process's SQLite writes keep one order)."""
        return cls(store.engine, store if _writes_rows(store) else None)

    def record(self, **values: Any) -> int:
        unknown = set(values) - _CALL_COLUMNS
        if unknown:
            raise TypeError(f"unknown call record fields: {sorted(unknown)}")
        values = {**_DEFAULTS, "created_at": time.time(), **values}
        columns = tuple(values)
        sql = _insert_call_sql(self.engine.dialect.name, columns)
        params = tuple(json_text(values[c]) if c in _JSON_COLUMNS else values[c] for c in columns)
        if self.writer is not None:
            return self.writer.insert_row(sql, params)
        with self.engine.begin() as conn:
            result = conn.exec_driver_sql(sql, params)
            return int(result.lastrowid if self.engine.dialect.name == "sqlite" else result.scalar_one())

    def reserve(self, values: dict[str, Any], estimate: float, max_cost: float) -> int | None:
        """Write a call's row (status ``pending``, cost = ``estimate``) only while its execution's
        spend, reservations included, is below ``max_cost``: the row id, or None when the budget
        is spent. One statement (and on PostgreSQL an advisory lock on the execution) makes
        concurrent steps and processes see each other's reservations: the budget holds."""
        execution_id = values["execution_id"]
        row = {**values, "status": "pending", "cost": estimate, "created_at": time.time()}
        columns = sorted(row)
        spent = (
            select(func.coalesce(func.sum(CALLS.c.cost), 0.0))
            .where(CALLS.c.execution_id == execution_id)
            .scalar_subquery()
        )
        source = select(*[literal(row[c], CALLS.c[c].type) for c in columns]).where(spent < max_cost)
        statement = insert(CALLS).from_select(columns, source).returning(CALLS.c.id)
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"hub.llm.budget:{execution_id}"})
            found = conn.execute(statement).first()
        return int(found[0]) if found is not None else None

    def finish(self, row_id: int, **values: Any) -> None:
        """Complete a reserved row with what the call did (its real cost replaces the estimate)."""
        unknown = set(values) - _CALL_COLUMNS
        if unknown:
            raise TypeError(f"unknown call record fields: {sorted(unknown)}")
        with self.engine.begin() as conn:
            conn.execute(update(CALLS).where(CALLS.c.id == row_id).values(**values))

    def calls(
        self, execution_id: str, path: str | None = None, limit: int | None = None, after: list[Any] | None = None,
    ) -> list[dict[str, Any]]:
        """An execution's calls, oldest first (a page of ``limit`` after the call ``after[0]``)."""
        query = select(CALLS).where(CALLS.c.execution_id == execution_id)
        if path is not None:
            query = query.where(CALLS.c.path == path)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(keyset.page(query, ((CALLS.c.id, False),), after, limit))]

    def totals(self, execution_id: str) -> dict[str, Any]:
        """Calls, tokens and cost (USD) of one execution, cache hits included at no cost."""
        query = select(
            func.count(),
            func.coalesce(func.sum(CALLS.c.input_tokens), 0),
            func.coalesce(func.sum(CALLS.c.output_tokens), 0),
            func.coalesce(func.sum(CALLS.c.cost), 0.0),
        ).where(CALLS.c.execution_id == execution_id)
        with self.engine.connect() as conn:
            calls, tokens_in, tokens_out, cost = conn.execute(query).one()
        return {
            "calls": int(calls),
            "input_tokens": int(tokens_in),
            "output_tokens": int(tokens_out),
            "cost": float(cost),
        }

    def spent(self, execution_id: str) -> float:
        return float(self.totals(execution_id)["cost"])

    # -- cache -----------------------------------------------------------------------------------

    def cache_get(self, key: str, now: float | None = None) -> dict[str, Any] | None:
        """The answer cached under ``key`` while it has not expired: one prepared lookup (evals
        and cached steps ask before every model call)."""
        now = time.time() if now is None else now
        sql = _cache_sql(self.engine.dialect.name)[0]
        if self.writer is not None:
            row = self.writer.fetch_row(sql, (key,))
        else:
            with self.engine.connect() as conn:
                row = conn.exec_driver_sql(sql, (key,)).first()
        if row is None or row[1] <= now:
            return None
        response = row[0]
        return dict(json.loads(response) if isinstance(response, str | bytes) else response)

    def cache_put(self, key: str, model: str, response: dict[str, Any], ttl: float) -> None:
        """Store an answer under ``key``, replacing an earlier one: one upsert. Expired entries
        are removed by the same process at most once a minute (not by every write)."""
        now = time.time()
        sql = _cache_sql(self.engine.dialect.name)[1]
        params = (key, model, json_text(response), now, now + ttl)
        if self.writer is not None:
            self.writer.write_sql(sql, params)
        else:
            with self.engine.begin() as conn:
                conn.exec_driver_sql(sql, params)
        if now - _purged.get(self.engine, 0.0) >= CACHE_PURGE_EVERY:
            _purged[self.engine] = now
            with self.engine.begin() as conn:
                conn.execute(delete(CACHE).where(CACHE.c.expires_at <= now))


@functools.lru_cache(maxsize=4)
def _cache_sql(dialect: str) -> tuple[str, str]:
    """The driver-level lookup and upsert of a cached answer (``response`` arrives JSON-encoded)."""
    mark = "?" if dialect == "sqlite" else "%s"
    response = mark if dialect == "sqlite" else f"CAST({mark} AS JSON)"
    get = f'SELECT response, expires_at FROM {CACHE.name} WHERE "key" = {mark}'
    put = (
        f'INSERT INTO {CACHE.name} ("key", model, response, created_at, expires_at) '
        f"VALUES ({mark}, {mark}, {response}, {mark}, {mark}) "
        'ON CONFLICT ("key") DO UPDATE SET model = excluded.model, response = excluded.response, '
        "created_at = excluded.created_at, expires_at = excluded.expires_at"
    )
    return get, put


@functools.lru_cache(maxsize=32)
def _insert_call_sql(dialect: str, columns: tuple[str, ...]) -> str:
    """The driver-level INSERT of one call record with ``columns`` (JSON ones arrive encoded): a
    prepared statement, without a Core statement's compile-cache and type-processing work per
    call (the record is written on every model call)."""
    mark = "?" if dialect == "sqlite" else "%s"
    values = ", ".join(f"CAST({mark} AS JSON)" if dialect != "sqlite" and c in _JSON_COLUMNS else mark for c in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    returning = "" if dialect == "sqlite" else " RETURNING id"
    return f"INSERT INTO {CALLS.name} ({names}) VALUES ({values}){returning}"


def cache_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    payload = json.dumps({"model": model, "messages": messages, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def usage_since(store: Any, after: int) -> list[tuple[str | None, int, int, int, float]]:
    """The calls after the call id ``after``, summed per model: ``(model, newest id, input tokens,
    output tokens, cost)``. Raises when the table does not exist yet (no model was ever called)."""
    query = (
        select(CALLS.c.model, func.max(CALLS.c.id), func.sum(CALLS.c.input_tokens),
               func.sum(CALLS.c.output_tokens), func.sum(CALLS.c.cost))
        .where(CALLS.c.id > after)
        .group_by(CALLS.c.model)
    )
    with store.auto.connect() as conn:
        return [(model, int(last), int(tokens_in or 0), int(tokens_out or 0), float(cost or 0.0))
                for model, last, tokens_in, tokens_out, cost in conn.execute(query)]


provide(MODEL_USAGE, usage_since)
