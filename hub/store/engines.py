"""The connection pools of a store's database, made from its URL.

Apart from :mod:`hub.store.store` so that a command that needs the database but none of the
engine's tables (``hub eval`` of a prompt: :class:`hub.store.database.Database`) opens it without
importing the statement modules and table classes of executions, steps and flows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import StaticPool

from hub.store.json_text import json_text


def open_engines(url: str) -> tuple[Engine, Engine]:
    """The engine of the store at ``url`` and its autocommit twin (the same one for an in-memory
    SQLite, whose one connection is shared); a SQLite file's folder is made. Core statements encode
    JSON columns with :func:`~hub.store.json_text.json_text`, as the driver-level writes do."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    if not url.startswith("sqlite"):
        # no pre-ping (a round trip per checkout); connections are recycled instead
        engine = create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20, json_serializer=json_text)
        auto = create_engine(url, pool_recycle=1800, pool_size=10, max_overflow=20, isolation_level="AUTOCOMMIT",
                             json_serializer=json_text)
        return engine, auto
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}, "json_serializer": json_text}
    if path in ("", ":memory:"):
        kwargs["poolclass"] = StaticPool
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_pragmas)
    if path in ("", ":memory:"):
        return engine, engine
    auto = create_engine(url, isolation_level="AUTOCOMMIT", **kwargs)
    event.listen(auto, "connect", _sqlite_pragmas)
    return engine, auto


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
