"""The hot path of ``POST /v1/enrich/{namespace}/{flow_id}``: the enrichment call without FastAPI's
nested-router matching, dependency solving and parameter validation, which cost about a sixth of
the server's CPU per call of ``bench/api_bench.py enrich-llm`` (more than the four SQLite
transactions of the execution).

It is a Starlette route placed before the API's routers, inside the same middleware (body limit,
server span, the hub's error handlers). It takes only a call whose parameters it reads exactly as
the FastAPI route :func:`hub.api.enrich.enrich` would — a JSON object as the body with the
``application/json`` content type (with or without parameters such as a charset: FastAPI reads
every such body as ``json.loads`` of its bytes, and so does this route), and ``timeout`` and ``cache`` given at most once each in a
form it parses as FastAPI does — and then checks, authorizes and answers it with that route's own
code, in its order: storable text (:func:`hub.api.guard.check_storable`), the key
(:func:`hub.api.auth.authorize`), then :func:`hub.api.enrich.answer`. Every other call (another
content type, a body that is not an object, a parameter it does not read) goes on, its body
replayed, to the FastAPI route, which answers it as before. The API's documentation is that
route's.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers, QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub.api import enrich
from hub.api.auth import authorize, header_token
from hub.api.guard import check_storable

FULL_ROUTE = "hub.enrich.full_route"
"""Scope key: the call was passed on to the FastAPI route (this route no longer matches it)."""

# the forms of the query parameters read here exactly as FastAPI reads them (pydantic's float
# and bool); any other form goes to the FastAPI route, which validates it
_SECONDS = re.compile(r"[0-9]{1,4}(\.[0-9]{1,6})?")
_BOOLS = {"true": True, "1": True, "yes": True, "on": True, "t": True, "y": True,
          "false": False, "0": False, "no": False, "off": False, "f": False, "n": False}


class EnrichRoute(Route):
    """``POST {prefix}/enrich/{namespace}/{flow_id}`` answered by :class:`_Enrich`; ``router`` is
    the app's router, which gets the calls this route passes on."""

    def __init__(self, prefix: str, router: ASGIApp):
        super().__init__(f"{prefix}{enrich.router.prefix}/{{namespace}}/{{flow_id}}", _Enrich(router),
                         methods=["POST"], name="enrich_hot_path", include_in_schema=False)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        # another method is the FastAPI route's to refuse (405), as before
        if scope["type"] != "http" or scope.get("method") != "POST" or FULL_ROUTE in scope:
            return Match.NONE, {}
        return super().matches(scope)


class _Enrich:
    """The route's ASGI app (a class, so Starlette passes it the raw call)."""

    def __init__(self, router: ASGIApp):
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            body = await request.body()  # (through the body limit, which raises 413)
        except HTTPException:
            raise
        except Exception as exc:  # as the FastAPI route answers a body it cannot read
            raise HTTPException(400, "There was an error parsing the body") from exc
        params = _read(scope, body)
        if params is None:
            scope[FULL_ROUTE] = True
            await self.router(scope, _replay(body, receive), send)
            return
        inputs, timeout, cache = params
        hub = request.app.state.hub
        check_storable(dict(request.path_params), "path")  # the order of guard.storable_request
        for name, value in request.query_params.multi_items():
            check_storable({name: value}, "query")
        check_storable(inputs, "body")
        principal = authorize(request, hub, await header_token(request), "run", per_namespace=True)
        path = request.path_params
        response = await enrich.answer(request, hub, principal, path["namespace"], path["flow_id"], inputs, timeout, cache)
        await response(scope, receive, send)


def _read(scope: Scope, body: bytes) -> tuple[dict[str, Any], float | None, bool] | None:
    """The body and the query parameters of a call whose reading this route knows to be the
    FastAPI route's, or None."""
    media_type = Headers(scope=scope).get("content-type", "").partition(";")[0].strip().lower()
    if not body or media_type != "application/json":
        return None
    query = QueryParams(scope["query_string"])
    timeout: float | None = None
    cache = True
    for name in ("timeout", "cache"):
        values = query.getlist(name)
        if len(values) > 1:
            return None
        if not values:
            continue
        if name == "timeout":
            if not _SECONDS.fullmatch(values[0]) or not 0 < float(values[0]) <= 3600:
                return None
            timeout = float(values[0])
        elif values[0].lower() in _BOOLS:
            cache = _BOOLS[values[0].lower()]
        else:
            return None
    try:
        inputs = json.loads(body)
    except (ValueError, RecursionError):  # (the FastAPI route answers each its own way)
        return None
    return (inputs, timeout, cache) if isinstance(inputs, dict) else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` with the body already read given again first."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
