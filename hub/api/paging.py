"""Keyset paging for the list endpoints: ``?cursor=`` in, ``next`` out.

A cursor is the sort key of the last item of a page (for executions ``(created_at, id)``) as
base64url JSON: opaque to clients, who pass back the ``next`` they were given. The next page
starts right after that key, with a range on the list's index, so it costs the same at any
depth, and items created meanwhile neither shift nor repeat it. ``next`` is null on the last page.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from hub.api.errors import ApiError

CURSOR_HELP = "The `next` of the previous page; omit for the first page."


def encode_cursor(key: list[Any]) -> str:
    """The cursor that starts the page after the item whose sort key is ``key``."""
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, shape: tuple[Any, ...]) -> list[Any]:
    """The sort key in ``cursor``, checked against ``shape`` (one type per part); 400 when it is
    not a cursor this list gave."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        key = None
    ok = isinstance(key, list) and len(key) == len(shape) and all(
        isinstance(part, kind) and not isinstance(part, bool) for part, kind in zip(key, shape, strict=False)
    )
    if not ok:
        raise ApiError(400, f"cursor {cursor[:60]!r} is not one this list gave; pass the `next` of the previous page, "
                            "or no cursor for the first page", details=[{"path": "query.cursor", "message": "invalid cursor"}])
    return list(key)


def next_cursor(items: list[Any], limit: int, key: Any) -> str | None:
    """``next`` for a page fetched with ``limit + 1`` rows: the cursor after its last item, or None
    when no row followed (the extra row is removed from ``items``)."""
    if len(items) <= limit:
        return None
    del items[limit:]
    return encode_cursor(key(items[-1]))
