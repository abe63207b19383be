"""What every part of the store shares: its two connection pools and its limits."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

WRITER = "(the store's writer connection)"
"""How a driver error names the statement when the block on the writer ran several."""


class StoreBase:
    """The connections of a store (see :class:`hub.store.store.Store`, which is made of the parts
    that subclass this one: flows, executions, step runs and logs, blobs)."""

    def __init__(self, engine: Engine, inline_limit: int = 64 * 1024, auto: Engine | None = None):
        self.engine = engine
        # single-statement writes need no explicit transaction: one round trip each, on a pool
        # of connections that stay in autocommit mode (switching per checkout costs more)
        self.auto = auto or engine
        self.inline_limit = inline_limit
        self.is_sqlite = engine.dialect.name == "sqlite"
        # the DBAPI connection of the hot step writes on SQLite, and the lock that orders them
        self.writer_fairy: Any = None
        self.writer_lock = threading.Lock()

    def _writer(self) -> Any:
        """The DBAPI connection the hot writes use, taken from the pool once and kept (writes on
        SQLite are one at a time anyway; :attr:`writer_lock` orders this process's)."""
        if self.writer_fairy is None:
            self.writer_fairy = self.engine.raw_connection()
        return self.writer_fairy.driver_connection

    def insert_row(self, sql: str, params: Sequence[Any]) -> int:
        """One driver-level INSERT (qmark parameters) on SQLite's writer connection, committed;
        the new row's id. For a feature's hot write of a row of its own (a model call's record):
        no pool checkout, no Core statement. Driver errors are raised as SQLAlchemy raises them."""
        return int(self._on_writer(sql, params, commit=True).lastrowid)

    def write_sql(self, sql: str, params: Sequence[Any]) -> None:
        """One driver-level write (an upsert, an update) on SQLite's writer connection, committed."""
        self._on_writer(sql, params, commit=True)

    def fetch_row(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row of a driver-level read on SQLite's writer connection: a hot lookup (a
        cached answer) without a pool checkout or a Core statement."""
        return self._on_writer(sql, params, commit=False).fetchone()  # type: ignore[no-any-return]

    def _on_writer(self, sql: str, params: Sequence[Any], *, commit: bool) -> Any:
        with self.writer_use(sql, params) as conn:
            cursor = conn.execute(sql, params)
            if commit:
                conn.commit()
            else:  # a read: fetched here, and no transaction left open on the shared connection
                cursor = _Fetched(cursor.fetchall())
                if conn.in_transaction:
                    conn.rollback()
            return cursor

    def writer_use(self, sql: str = WRITER, params: Sequence[Any] | None = None) -> _WriterUse:
        """``with store.writer_use() as conn``: the writer connection under the writer lock, for
        driver-level statements the block commits itself; rolled back if the block raises, a driver
        error raised as SQLAlchemy raises it (``sql`` and ``params`` name the statement in it)."""
        return _WriterUse(self, sql, params)

    def close_writer(self) -> None:
        """Give the writer connection back to the pool (before the pool is disposed)."""
        with self.writer_lock:
            if self.writer_fairy is not None:
                self.writer_fairy.close()
                self.writer_fairy = None

    def close(self) -> None:
        """The writer connection given back, then both pools disposed."""
        self.close_writer()
        self.engine.dispose()
        if self.auto is not self.engine:
            self.auto.dispose()


class _WriterUse:
    """What :meth:`StoreBase.writer_use` gives: a class, not a generator context manager, since
    every hot write on SQLite goes through it (a generator costs about a microsecond more a use)."""

    __slots__ = ("conn", "params", "sql", "store")

    def __init__(self, store: StoreBase, sql: str, params: Sequence[Any] | None):
        self.store, self.sql, self.params = store, sql, params

    def __enter__(self) -> Any:
        self.store.writer_lock.acquire()
        try:
            self.conn = self.store._writer()
        except BaseException:
            self.store.writer_lock.release()
            raise
        return self.conn

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: Any) -> None:
        try:
            if exc is not None:
                self.conn.rollback()
                import sqlite3  # here, not at the top: a store on PostgreSQL never loads it (~1 MiB)

                if isinstance(exc, sqlite3.Error):
                    raise DBAPIError.instance(self.sql, self.params, exc, sqlite3.Error) from exc
        finally:
            self.store.writer_lock.release()


class _Fetched:
    """The rows of a read, fetched while the writer lock was held."""

    def __init__(self, rows: list[Any]):
        self.rows = rows

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None
