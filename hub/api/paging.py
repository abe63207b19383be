"""Keyset paging for the list endpoints: ``?cursor=`` in, ``next`` out.

A cursor is the sort key of the last item of a page (for executions ``(created_at, id)``) as
base64url JSON: opaque to clients, who pass back the ``next`` they were given. The next page
starts right after that key, with a range on the list's index, so it costs the same at any
depth, and items created meanwhile neither shift nor repeat it. ``next`` is null on the last page.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from hub.api.errors import ApiError
from hub.core import keyset

CURSOR_HELP = "The `next` of the previous page; omit for the first page."
NEXT_HEADERS = {
    "Link": {"description": 'The next page, `<url>; rel="next"` (absent on the last page).', "schema": {"type": "string"}},
    "Hub-Next-Cursor": {"description": "The cursor of the next page (absent on the last page).", "schema": {"type": "string"}},
}


def encode_cursor(key: list[Any]) -> str:
    """The cursor that starts the page after the item whose sort key is ``key``."""
    return keyset.encode(key)


def decode_cursor(cursor: str, shape: tuple[Any, ...]) -> list[Any]:
    """The sort key in ``cursor``, checked against ``shape`` (one type per part); 400 when it is
    not a cursor this list gave."""
    try:
        return keyset.decode(cursor, shape)
    except ValueError as exc:
        raise ApiError(400, f"{exc}; pass the `next` of the previous page, or no cursor for the first page",
                       details=[{"path": "query.cursor", "message": "invalid cursor"}]) from None


def start_after(cursor: str | None, shape: tuple[Any, ...], offset: int = 0) -> list[Any] | None:
    """The sort key a page starts after (None for the first page); a cursor and an offset together are refused."""
    if not cursor:
        return None
    if offset:
        raise ApiError(400, "give cursor or offset, not both", details=[{"path": "query.offset", "message": "with cursor"}])
    return decode_cursor(cursor, shape)


def next_cursor(items: list[Any], limit: int, key: Any) -> str | None:
    """``next`` for a page fetched with ``limit + 1`` rows: the cursor after its last item, or None
    when no row followed (the extra row is removed from ``items``)."""
    return keyset.following(items, limit, key)


def link_next(request: Request, response: Response, cursor: str | None) -> None:
    """A list answered as a JSON array (kept so for existing clients) gives its next page in headers:
    ``Link: <url>; rel="next"`` (RFC 8288) and the bare cursor in ``Hub-Next-Cursor``."""
    if cursor is None:
        return
    url = request.url.remove_query_params(["cursor", "offset"]).include_query_params(cursor=cursor)
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    response.headers["Hub-Next-Cursor"] = cursor
