"""``/mcp`` on ``hub serve`` (and ``hub mcp --http``): the hub's MCP server over streamable HTTP.

Stateless: every request carries its API key (``Authorization: Bearer`` or ``X-API-Key``, as for
``/v1``), checked here before the MCP layer sees it; the key's scopes decide which flows the
request lists and may call. The SDK's session manager runs for the life of the server, in a
background task of the API's lifespan (cancelled with the others at shutdown).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from hub.api import mcp_server as server
from hub.api.auth import Principal, authenticate, token_from
from hub.api.context import Hub
from hub.api.errors import ApiError, error_response

PRINCIPAL = "hub.principal"  # where the caller is kept in the request's scope


def _resolve(ctx: Any) -> tuple[Hub, Principal]:
    request = ctx.request
    return request.app.state.hub, request.scope[PRINCIPAL]


class Endpoint:
    """The ASGI app mounted at ``/mcp``."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        hub: Hub = request.app.state.hub
        try:
            scope[PRINCIPAL] = authenticate(hub, token_from(request))
        except ApiError as exc:
            response = error_response(exc.status, exc.type, str(exc), None, exc.headers, instance=request.url.path)
            await response(scope, receive, send)
            return
        manager = await _manager(request.app.state, hub)
        await manager.handle_request(scope, receive, send)


async def _manager(state: Any, hub: Hub) -> Any:
    """The SDK's session manager of this app, started on first use."""
    manager = getattr(state, "mcp_manager", None)
    if manager is None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

        manager = StreamableHTTPSessionManager(app=server.build(_resolve), stateless=True, json_response=True)
        state.mcp_manager = manager
        ready = asyncio.Event()
        state.mcp_ready = ready
        hub.spawn(_hold(manager, ready))
    await state.mcp_ready.wait()
    return manager


async def _hold(manager: Any, ready: asyncio.Event) -> None:
    async with manager.run():
        ready.set()
        await asyncio.Event().wait()  # until the server's lifespan cancels its background tasks


router = APIRouter()
# a route, not a mount: POST /mcp is answered as it is, without a redirect to /mcp/
router.add_route("/mcp", Endpoint(), methods=["GET", "POST", "DELETE"], include_in_schema=False)  # type: ignore[arg-type]
