"""What the API refuses before any work is done: bodies over the size limits (413) and text the
database cannot store or data nested too deep (422 naming the field).

- :class:`BodyLimit` caps every request body at ``HUB_API_MAX_BODY`` bytes (a declared
  ``Content-Length`` is refused before a byte is read; a chunked body once it passes the limit);
- :func:`read_body` reads a body with a lower limit (a flow's YAML: ``HUB_API_MAX_FLOW_BODY``);
- :func:`storable_request` (a dependency of every route) checks the path and query parameters and
  the parsed JSON body; :func:`check_storable` checks any other data (a webhook's body).

Both refusals are raised as exceptions (an ``HTTPException`` from the body reader, so FastAPI's
body parsing passes it on; :class:`~hub.api.errors.ApiError` otherwise), answered by the hub's
error handlers like every other error.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api.errors import ApiError
from hub.flow.yamlpos import unstorable

MAX_DEPTH = 100  # levels of nesting of a JSON body


def too_large(limit: int, what: str = "the request body", setting: str = "HUB_API_MAX_BODY") -> HTTPException:
    return HTTPException(413, f"{what} is larger than {limit} bytes (the server's {setting})")


class BodyLimit:
    """ASGI middleware: a request body larger than ``limit`` bytes is refused with 413, raised from
    ``receive`` where the route reads it (so the hub's error handlers answer)."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            if declared is not None and declared > self.limit:
                raise too_large(self.limit)
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(self.limit)
            return message

        await self.app(scope, limited, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


async def read_body(request: Request, limit: int, what: str, setting: str) -> bytes:
    """The whole body, refused with 413 once it passes ``limit`` bytes (nothing more is read)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit, what, setting)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, what, setting)
        chunks.append(chunk)
    return b"".join(chunks)


def problem(value: Any, where: str) -> tuple[str, str] | None:
    """The first place in ``value`` (JSON-like data) the database cannot store, as (path, what is
    wrong), or None. Walks without recursion, so any depth is safe to check."""
    stack: list[tuple[Any, str, int]] = [(value, where, 0)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            bad = unstorable(item)
            if bad:
                return path, f"holds {bad}, which cannot be stored; remove it or encode the data (e.g. base64)"
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return path, f"is nested more than {MAX_DEPTH} levels deep"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in pairs:
                if isinstance(key, str) and (bad := unstorable(key)):
                    return path, f"has a key that holds {bad}, which cannot be stored; rename it"
                stack.append((child, f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}", depth + 1))
    return None


def check_storable(value: Any, where: str) -> None:
    """422 naming the field when ``value`` holds text the database cannot store (see :func:`problem`)."""
    found = problem(value, where)
    if found is not None:
        path, message = found
        raise ApiError(422, f"{path} {message}", details=[{"path": path, "message": message}])


async def storable_request(request: Request) -> None:
    """Dependency of every route: path and query parameters and a JSON body hold only storable text."""
    check_storable(dict(request.path_params), "path")
    for name, value in request.query_params.multi_items():
        check_storable({name: value}, "query")
    route = request.scope.get("route")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if getattr(route, "body_field", None) is not None and (kind == "application/json" or kind.endswith("+json")):
        try:
            body = await request.json()  # parsed already by FastAPI for the route: cached, not parsed again
        except ValueError:
            return  # FastAPI answered the bad JSON before this runs
        check_storable(body, "body")
