"""The reads of the console's lists: a page of executions by keyset (the store's list, fast at any
depth), each flow's newest execution, an execution's subflow children."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from hub.store.store import EXECUTIONS, Store


@dataclass
class Filters:
    """What the executions list is narrowed to (all optional)."""

    namespace: str | None = None
    flow: str | None = None
    states: tuple[str, ...] = ()
    label: tuple[str, str] | None = None
    since: float | None = None
    until: float | None = None


@dataclass
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def cursor_of(row: dict[str, Any]) -> str:
    return f"{row['created_at']!r}~{row['id']}"


def parse_cursor(value: str | None) -> tuple[float, str] | None:
    if not value or "~" not in value:
        return None
    at, _, ident = value.partition("~")
    try:
        return float(at), ident
    except ValueError:
        return None


def executions_page(store: Store, filters: Filters, limit: int, before: str | None = None) -> Page:
    """Executions newest first after the cursor ``before`` (``created_at~id`` of the last row shown),
    through the store's keyset list: an indexed range read, however deep the page."""
    rows = store.list_executions(
        namespace=filters.namespace, flow_id=filters.flow, states=filters.states or None, label=filters.label,
        since=filters.since, until=filters.until, limit=limit + 1, after=parse_cursor(before),
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, cursor_of(rows[-1]) if more and rows else None)


def last_executions(store: Store, flows: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest execution of each flow (id, state, times), by (namespace, flow id)."""
    table = EXECUTIONS
    out: dict[tuple[str, str], dict[str, Any]] = {}
    columns = (table.c.id, table.c.state, table.c.created_at, table.c.ended_at)
    with store.auto.connect() as conn:
        for namespace, flow_id in flows:
            row = conn.execute(
                select(*columns).where(table.c.namespace == namespace, table.c.flow_id == flow_id)
                .order_by(table.c.created_at.desc()).limit(1)
            ).first()
            if row is not None:
                out[(namespace, flow_id)] = dict(row._mapping)
    return out


def children(store: Store, execution_id: str) -> list[dict[str, Any]]:
    """Executions started by this one's subflow steps (id, flow, state, path)."""
    table = EXECUTIONS
    query = select(table.c.id, table.c.namespace, table.c.flow_id, table.c.state, table.c.parent_path,
                   table.c.trace_id).where(table.c.parent_id == execution_id).order_by(table.c.created_at)
    with store.auto.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query.limit(500))]
