"""Writing rows into a SQL table: typed coercion per column, table creation, insert or upsert."""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    MetaData,
    String,
    Table,
    Text,
    event,
    inspect,
)
from sqlalchemy.engine import Engine
from sqlalchemy.sql.expression import Insert

from connectors.etl.dataset import dumps

Row = dict[str, Any]


def sqlite_transactions(engine: Engine) -> None:
    """Let pysqlite run real transactions with savepoints (SQLAlchemy's documented recipe)."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")


# -- coercion ----------------------------------------------------------------------------------


def to_bool(value: Any) -> bool:
    """A boolean from a bool, a number or a word (true/false, yes/no, on/off, t/f, y/n, 1/0)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "yes", "y", "1", "on"):
        return True
    if text in ("false", "f", "no", "n", "0", "off"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _int(value: Any) -> int:
    if isinstance(value, bool | int):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return int(str(value).strip())


def _datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return _datetime(text).date()


def _str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def _json(value: Any) -> Any:
    return value


COERCE: dict[type, Callable[[Any], Any]] = {
    int: _int,
    float: lambda v: float(v) if not isinstance(v, str) else float(v.strip()),
    decimal.Decimal: lambda v: decimal.Decimal(str(v).strip()),
    bool: to_bool,
    dt.date: _date,
    dt.datetime: _datetime,
    dt.time: lambda v: v if isinstance(v, dt.time) else dt.time.fromisoformat(str(v).strip()),
    str: _str,
    bytes: lambda v: v if isinstance(v, bytes) else base64.b64decode(str(v)),
    dict: _json,
    list: _json,
}


def coercers(table: Table) -> dict[str, Callable[[Any], Any]]:
    out: dict[str, Callable[[Any], Any]] = {}
    for column in table.columns:
        if isinstance(column.type, JSON):
            out[column.name] = _json
            continue
        try:
            python_type = column.type.python_type
        except NotImplementedError:  # SQLAlchemy's answer for types with no Python counterpart
            out[column.name] = _json
            continue
        out[column.name] = COERCE.get(python_type, _json)
    return out


def coerce_row(row: Row, fns: dict[str, Callable[[Any], Any]]) -> Row:
    """Values converted to the column types; raises ValueError naming the column."""
    out: Row = {}
    for key, value in row.items():
        if value is None:
            out[key] = None
            continue
        try:
            out[key] = fns[key](value)
        except (ValueError, TypeError, decimal.InvalidOperation, json.JSONDecodeError) as exc:
            raise ValueError(f"column {key}: {exc}") from None
    return out


# -- tables ------------------------------------------------------------------------------------


def split_name(name: str) -> tuple[str | None, str]:
    schema, _, table = name.rpartition(".")
    return schema or None, table


def reflect(conn: Connection, name: str) -> Table | None:
    schema, table = split_name(name)
    if not inspect(conn).has_table(table, schema=schema):
        return None
    return Table(table, MetaData(), schema=schema, autoload_with=conn)


def infer_type(values: list[Any], is_key: bool) -> Any:
    seen = [v for v in values if v is not None]
    if not seen:
        return String(255) if is_key else Text()
    if all(isinstance(v, bool) for v in seen):
        return Boolean()
    if all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return BigInteger()
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in seen):
        return Float()
    if all(isinstance(v, dict | list) for v in seen):
        return JSON()
    return String(255) if is_key else Text()


def create_table(conn: Connection, name: str, columns: list[str], sample: list[Row], key: list[str]) -> Table:
    """A table whose column types are guessed from the first rows; the key becomes the primary key."""
    schema, table_name = split_name(name)
    cols = [
        Column(col, infer_type([r.get(col) for r in sample], col in key), primary_key=col in key, nullable=col not in key)
        for col in columns
    ]
    table = Table(table_name, MetaData(), *cols, schema=schema)
    table.create(conn)
    return table


# -- statements --------------------------------------------------------------------------------


def upsert_statement(table: Table, dialect: str, key: list[str], columns: list[str]) -> Insert | None:
    """INSERT ... ON CONFLICT / ON DUPLICATE KEY for the dialects that have one, else None."""
    updates = [c for c in columns if c not in key]
    if dialect in ("postgresql", "sqlite"):
        from sqlalchemy.dialects.postgresql import insert as pg_insert
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt: Any = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=key)
        return stmt.on_conflict_do_update(index_elements=key, set_={c: stmt.excluded[c] for c in updates})
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        mstmt = mysql_insert(table)
        targets = updates or key[:1]
        return mstmt.on_duplicate_key_update({c: mstmt.inserted[c] for c in targets})
    return None


def upsert_generic(conn: Connection, table: Table, key: list[str], rows: list[Row]) -> None:
    """Update by key, insert what did not exist: for dialects without a native upsert."""
    for row in rows:
        where = [table.c[k] == row[k] for k in key]
        values = {k: v for k, v in row.items() if k not in key}
        updated = conn.execute(table.update().where(*where).values(**values)).rowcount if values else 0
        if not updated:
            exists = conn.execute(table.select().where(*where).limit(1)).first() if not values else None
            if exists is None:
                conn.execute(table.insert().values(**row))
