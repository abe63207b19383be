"""The few reads the console makes beyond the store's own: a page of executions by keyset (fast at
any depth, only the columns a list shows) and each flow's newest execution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, cast, or_, select, tuple_

from hub.store.store import EXECUTIONS, Store

LIST_COLUMNS = ("id", "namespace", "flow_id", "revision", "state", "labels", "created_at", "started_at",
                "ended_at", "parent_id", "restarted_from")


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
    """Executions newest first after the cursor ``before`` (``created_at~id`` of the last row shown):
    one indexed range read, however deep the page."""
    table = EXECUTIONS
    query = select(*[table.c[name] for name in LIST_COLUMNS])
    if filters.namespace:
        query = query.where(table.c.namespace == filters.namespace)
    if filters.flow:
        query = query.where(table.c.flow_id == filters.flow)
    if filters.states:
        query = query.where(table.c.state.in_(filters.states))
    if filters.since is not None:
        query = query.where(table.c.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(table.c.created_at < filters.until)
    if filters.label:
        key, value = filters.label
        query = query.where(cast(table.c.labels[key].as_string(), String) == value)
    mark = parse_cursor(before)
    if mark is not None:
        at, ident = mark
        query = query.where(table.c.created_at <= at, or_(
            table.c.created_at < at, and_(table.c.created_at == at, table.c.id < ident),
        ) if store.engine.dialect.name == "sqlite" else tuple_(table.c.created_at, table.c.id) < (at, ident))
    query = query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)
    with store.auto.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
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
