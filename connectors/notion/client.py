"""The Notion client as the tasks use it: configuration, errors, data source discovery.

``notion-client``'s ``AsyncClient`` speaks the wire protocol (Notion-Version ``2025-09-03``,
where databases hold one or more *data sources*) and retries 429 itself, honouring
``Retry-After``; its HTTP goes through the hub's network guard. Failures become
:class:`~hub.errors.ConnectorError` with the HTTP status, Notion's error code and a hint.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import httpx
from notion_client import AsyncClient
from notion_client.client import RetryOptions
from notion_client.errors import HTTPResponseError, RequestTimeoutError
from pydantic import Field

from connectors.notion.settings import NotionSettings
from hub.core.errors import ConnectorError, TaskError
from hub.core.tasks import Params
from hub.net import Guard, http_client, retry_after

log = logging.getLogger("hub.connectors.notion")
T = TypeVar("T")


class NotionParams(Params):
    """Parameters every Notion task takes."""

    token: str | None = Field(None, description="Integration token; usually {{ secret('NOTION_TOKEN') }}.")
    base_url: str | None = Field(None, description="API root (default HUB_NOTION_BASE_URL or api.notion.com).")


_HINTS = {
    "unauthorized": "check the token (token param or HUB_NOTION_TOKEN)",
    "restricted_resource": "give the integration the capability this call needs",
    "object_not_found": "check the id, and share the page or database with the integration (… > Connections)",
    "rate_limited": "Notion asked to slow down; the step can be retried later",
    "validation_error": "the request does not match the data source's schema",
}


@asynccontextmanager
async def connect(
    params: NotionParams, settings: NotionSettings | None = None, guard: Guard | None = None
) -> AsyncIterator[AsyncClient]:
    """An ``AsyncClient`` on a guarded HTTP client, closed at the end of the block.

    (``AsyncClient``'s own ``async with`` swaps in a fresh, unguarded httpx client: not used.)
    """
    client = _client(params, settings, guard)
    try:
        yield client
    finally:
        await client.aclose()


def _client(params: NotionParams, settings: NotionSettings | None = None, guard: Guard | None = None) -> AsyncClient:
    settings = settings if settings is not None else NotionSettings()  # embedders and tests
    token = params.token or settings.token
    if not token:
        raise TaskError(
            "Notion is not configured: pass token: \"{{ secret('NOTION_TOKEN') }}\" or set HUB_NOTION_TOKEN",
            retryable=False,
        )
    return AsyncClient(
        client=http_client(guard),
        auth=token,
        base_url=(params.base_url or settings.base_url).rstrip("/"),
        notion_version=settings.version,
        timeout_ms=int(settings.timeout * 1000),
        logger=log,
        retry=RetryOptions(
            max_retries=settings.max_retries,
            initial_retry_delay_ms=500,
            max_retry_delay_ms=int(settings.max_retry_wait * 1000),
        ),
    )


async def call(awaitable: Awaitable[T], what: str) -> T:
    """Await a client call; Notion errors become ConnectorError with status, code and a hint."""
    try:
        return await awaitable
    except HTTPResponseError as exc:
        code = str(getattr(exc.code, "value", exc.code))
        hint = _HINTS.get(code)
        message = f"Notion {what} failed: {exc.status} {code}: {exc}" + (f" ({hint})" if hint else "")
        raise ConnectorError(
            message,
            status=exc.status,
            retry_after=retry_after(exc.headers),
            data={"code": code, "request_id": exc.request_id},
        ) from None
    except RequestTimeoutError:
        raise ConnectorError(f"Notion {what} timed out", retryable=True) from None
    except httpx.TransportError as exc:
        raise ConnectorError(f"Notion {what} failed: {type(exc).__name__}: {exc}", retryable=True) from None


async def resolve_data_source(
    client: AsyncClient, data_source_id: str | None, database_id: str | None, name: str | None = None
) -> dict[str, Any]:
    """The data source object (with its property schema) a task addresses.

    ``database_id`` is accepted for convenience: a database with one data source resolves to it;
    with several, ``data_source`` (a name) or ``data_source_id`` must say which.
    """
    if data_source_id:
        return await call(client.data_sources.retrieve(data_source_id), "retrieve data source")  # type: ignore[arg-type]
    if not database_id:
        raise TaskError("give data_source_id (or database_id)", retryable=False)
    database = await call(client.databases.retrieve(database_id), "retrieve database")  # type: ignore[arg-type]
    sources = database.get("data_sources") or []
    if name is not None:
        sources = [s for s in sources if s.get("name") == name]
    if len(sources) != 1:
        listing = ", ".join(f"{s.get('name')!r} ({s.get('id')})" for s in database.get("data_sources") or []) or "none"
        raise TaskError(
            f"database {database_id} has {len(sources)} matching data sources ({listing}); "
            "set data_source_id, or data_source to one of the names",
            retryable=False,
        )
    return await call(client.data_sources.retrieve(sources[0]["id"]), "retrieve data source")  # type: ignore[arg-type]


async def paginate(fetch: Any, limit: int | None = None, page_size: int = 100) -> list[dict[str, Any]]:
    """Follow ``has_more`` / ``next_cursor`` until the end (or ``limit`` results)."""
    results: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        size = page_size if limit is None else max(1, min(page_size, limit - len(results)))
        kwargs: dict[str, Any] = {"page_size": size}
        if cursor:
            kwargs["start_cursor"] = cursor
        page = await fetch(**kwargs)
        results.extend(page.get("results") or [])
        if limit is not None and len(results) >= limit:
            return results[:limit]
        cursor = page.get("next_cursor")
        if not page.get("has_more") or not cursor:
            return results
