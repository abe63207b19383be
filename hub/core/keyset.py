"""Keyset paging for any list query: order by a unique sort key, start right after a cursor.

A page is ``ORDER BY <key columns> LIMIT n+1`` with a range on the key's first column (so the
index the list is read through is entered at the cursor, not scanned from the start): page 1000
costs what page 1 costs, and rows inserted meanwhile neither shift nor repeat items. A cursor is
the sort key of a page's last item, as base64url JSON (opaque to clients).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_

Order = Sequence[tuple[ColumnElement[Any], bool]]
"""The sort key: ``(column, descending)`` pairs, the last one unique (an id)."""


def encode(key: Sequence[Any]) -> str:
    """The cursor that starts the page after the item whose sort key is ``key``."""
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str, shape: tuple[Any, ...]) -> list[Any]:
    """The sort key in ``cursor``, checked against ``shape`` (one type per part). ValueError when
    it is not a cursor of that shape."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        key = None
    ok = isinstance(key, list) and len(key) == len(shape) and all(
        isinstance(part, kind) and not isinstance(part, bool) for part, kind in zip(key, shape, strict=False)
    )
    if not ok or any(isinstance(part, int) and abs(part) >= 2**63 for part in key):  # type: ignore[union-attr]
        raise ValueError(f"cursor {cursor[:60]!r} is not one this list gave")
    return list(key)  # type: ignore[arg-type]


def after(order: Order, key: Sequence[Any]) -> ColumnElement[bool]:
    """Rows that come strictly after ``key`` in ``order``."""
    first, descending = order[0]
    bound = first <= key[0] if descending else first >= key[0]  # the index range
    branches = []
    for i, (column, desc) in enumerate(order):
        equal = [c == k for (c, _), k in zip(order[:i], key[:i], strict=True)]
        branches.append(and_(*equal, column < key[i] if desc else column > key[i]))
    return and_(bound, or_(*branches))


def page(query: Select[Any], order: Order, key: Sequence[Any] | None, limit: int | None) -> Select[Any]:
    """``query`` ordered by ``order``, after ``key`` when given, at most ``limit`` rows."""
    if key is not None:
        query = query.where(after(order, key))
    query = query.order_by(*(c.desc() if d else c.asc() for c, d in order))
    return query.limit(limit) if limit is not None else query


def following(rows: list[Any], limit: int, key: Callable[[Any], Sequence[Any]]) -> str | None:
    """The ``next`` cursor of a page read with ``limit + 1`` rows (the extra row is dropped from
    ``rows``); None on the last page."""
    if len(rows) <= limit:
        return None
    del rows[limit:]
    return encode(key(rows[-1]))
