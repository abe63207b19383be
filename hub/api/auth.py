"""API keys: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``, each with scopes.

Scopes: ``admin`` (everything), ``run`` (start, kill, restart, replay, enrich), ``approve``
(decide approvals), ``read`` (every GET). Every key may read. Without any key configured the
server is open, which :func:`hub.service.cli.serve` allows only on a loopback address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from hub.api.context import Hub, get_hub
from hub.api.errors import ApiError
from hub.core.host import SCOPES, provide

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hub_...`")
header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key in `X-API-Key`.")

IMPLIES = {"admin": {"admin", "run", "approve", "read"}, "run": {"run", "read"}, "approve": {"approve", "read"},
           "read": {"read"}}


@dataclass(frozen=True)
class Principal:
    """Who calls: a key (``key_id``) or nobody on an open localhost server (``key_id`` None)."""

    key_id: str | None
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return any(scope in IMPLIES.get(s, ()) for s in self.scopes)

    def allows_in(self, scope: str, namespace: str) -> bool:
        """``scope`` everywhere, or narrowed to ``namespace`` or one above it (``run:sales`` allows
        running the flows of ``sales`` and ``sales.emea``)."""
        if self.allows(scope):
            return True
        for held in self.scopes:
            base, _, where = held.partition(":")
            if where and scope in IMPLIES.get(base, ()) and (namespace == where or namespace.startswith(where + ".")):
                return True
        return False

    @property
    def name(self) -> str:
        return self.key_id or "anonymous"


OPEN = Principal(None, frozenset({"admin"}))
BOOTSTRAP = Principal("bootstrap", frozenset({"admin"}))


def authenticate(hub: Hub, token: str | None) -> Principal:
    if not hub.keys_configured():
        return OPEN
    if not token:
        raise ApiError(
            401, "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(create one with 'hub keys create NAME --scope run')",
            headers={"WWW-Authenticate": "Bearer"},
        )
    admin = hub.settings.admin_key
    if admin and _same(token, admin):
        return BOOTSTRAP
    row = hub.api_store.verify_key(token)
    if row is None:
        raise ApiError(401, "the API key is unknown or revoked", headers={"WWW-Authenticate": "Bearer"})
    return Principal(row["id"], frozenset(row["scopes"]))


def _same(a: str, b: str) -> bool:
    import hmac

    return hmac.compare_digest(a.encode(), b.encode())


def require(scope: str, per_namespace: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller must hold ``scope`` (or one that implies it); with ``per_namespace``,
    a scope narrowed to the route's ``{namespace}`` will do (``run:sales``)."""

    async def dependency(  # async: no thread hop per request (a stored key is one indexed read)
        request: Request,
        hub: Hub = Depends(get_hub),
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
        api_key: str | None = Depends(header_key),
    ) -> Principal:
        return authorize(request, hub, credentials.credentials if credentials else api_key, scope, per_namespace)

    dependency.__name__ = f"require_{scope}"
    return dependency


def authorize(request: Request, hub: Hub, token: str | None, scope: str, per_namespace: bool = False) -> Principal:
    """The caller of ``request``, who must hold ``scope`` (see :func:`require`); kept on
    ``request.state.principal``. 401 without a valid key, 403 without the scope."""
    principal = authenticate(hub, token)
    namespace = request.path_params.get("namespace") if per_namespace else None
    allowed = principal.allows_in(scope, namespace) if namespace else principal.allows(scope)
    if not allowed:
        raise ApiError(403, f"the API key {principal.name} lacks the {scope!r} scope (it has: "
                       f"{', '.join(sorted(principal.scopes))})")
    request.state.principal = principal
    return principal


async def header_token(request: Request) -> str | None:
    """The key the headers carry, read as the :func:`require` dependency reads it (a bearer
    credential first, then ``X-API-Key``), for a route that authorizes without FastAPI's
    dependencies."""
    credentials = await bearer(request)
    return credentials.credentials if credentials else await header_key(request)


def token_from(request: Request) -> str | None:
    """The key a request carries, if any (for endpoints that authenticate only sometimes)."""
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


provide(SCOPES, require)
