"""The execution list: newest first, filtered, paged by offset or by a keyset cursor.

Every filter has an index that ends in the list's order, ``(created_at, id)`` descending
(``hub.store.tables.Execution``), and a cursor page starts where the previous one ended with a
range on that index: the newest page and the page a million rows deep cost the same. An
``offset`` still works, and still costs what it skips.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from hub.store.labels import label_text
from hub.store.tables import EXECUTION_LABELS as LABELS
from hub.store.tables import EXECUTIONS

Cursor = tuple[float, str]
"""Where a page ended: the last row's ``(created_at, id)``; the next page is what comes after it."""


def list_executions(
    conn: Connection,
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
    """Up to ``limit`` executions, newest first: ``after`` a cursor (keyset), or past ``offset``."""
    c = EXECUTIONS.c
    query = select(EXECUTIONS)
    # the columns of the order: the execution's, or the label row's copy (its index is in order)
    created, ident = c.created_at, c.id
    if label:
        key, value = label
        query = query.select_from(LABELS.join(EXECUTIONS, LABELS.c.execution_id == c.id)).where(
            LABELS.c.key == key, LABELS.c.value == label_text(value)
        )
        created, ident = LABELS.c.created_at, LABELS.c.execution_id
    if namespace:
        query = query.where(c.namespace == namespace)
    if flow_id:
        query = query.where(c.flow_id == flow_id)
    states = list(states or [])
    if len(states) == 1:
        query = query.where(c.state == states[0])
    elif states:
        query = query.where(c.state.in_(states))
    if since is not None:
        query = query.where(created >= since)
    if until is not None:
        query = query.where(created < until)
    if parent_id:
        query = query.where(c.parent_id == parent_id)
    if after is not None:
        at, last_id = after
        # a range on the index (created_at <= at) and, within the one instant, the id
        query = query.where(created <= at, or_(created < at, and_(created == at, ident < last_id)))
    query = query.order_by(created.desc(), ident.desc()).limit(limit)
    if offset:
        query = query.offset(offset)
    return [dict(r._mapping) for r in conn.execute(query)]
