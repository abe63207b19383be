"""The one encoder of the store's JSON columns, whatever the path a value takes to them.

A value reaches a JSON column through SQLAlchemy (a Core statement, whose JSON type calls the
engine's ``json_serializer``: :func:`hub.store.engines.open_engines` sets it to :func:`json_text`)
or as text encoded beforehand for a driver-level statement (the hot writes on SQLite, the
batched ends on PostgreSQL): both take :func:`json_text`, so a value is stored the same way
whether it is written alone or in a batch, on either database.

A value JSON has no word for is converted as the engine converts a step's output before it is
stored (``to_jsonable_python(value, fallback=str)``): a datetime or a date becomes its ISO 8601
text, a Decimal, UUID or path its text, bytes their UTF-8 text, a set or tuple a list, an enum
its value, a model or dataclass its fields, anything else ``str(value)``. NaN and infinities
become ``null`` (PostgreSQL's ``json`` refuses them, SQLite would keep them: the two databases
then agree). What cannot be text at all (bytes that are not UTF-8, a lone surrogate) raises
ValueError before anything is written, on every path.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import to_json


def json_bytes(value: Any) -> bytes:
    """:func:`json_text` as UTF-8 (what a blob holds, and how long a step's output is)."""
    return to_json(value, fallback=str, inf_nan_mode="null")


def json_text(value: Any) -> str:
    """The JSON text a JSON column stores for ``value`` (None is JSON ``null``, as SQLAlchemy's
    JSON type stores it): compact, non-ASCII characters as themselves."""
    return json_bytes(value).decode()


def as_stored(value: Any) -> Any:
    """``value`` as reading its column back gives it (lists for tuples, strings for keys and for
    the values :func:`json_text` converts): what a row the engine keeps in memory must hold."""
    return json.loads(json_text(value))
