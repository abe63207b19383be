"""Who looks at the console: a signed session cookie that carries the API key, CSRF tokens, and
the route class that turns the hub's errors into pages.

The cookie (``hub_console``) is HttpOnly, SameSite=Strict, and signed with HMAC-SHA256; it holds a
random session id and, once signed in, the API key, which is checked against the stored keys on
every request (a revoked key signs the browser out). Every form carries a CSRF token derived from
the session id; JavaScript sends the same token in ``X-CSRF-Token``. On a server without keys the
console is open like the API: the session only carries its id.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from hub.api.auth import Principal, authenticate
from hub.api.context import Hub
from hub.api.errors import ApiError, hub_error_details, hub_error_message, hub_error_status
from hub.console.settings import ConsoleSettings, signing_key
from hub.errors import HubError

log = logging.getLogger(__name__)

COOKIE = "hub_console"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """The page needs a signed-in key; the route answers with a redirect to the sign-in page."""

    def __init__(self, next_url: str, notice: str | None = None):
        super().__init__(notice or "sign in")
        self.next_url = next_url
        self.notice = notice


@dataclass
class ConsoleState:
    """What the console keeps per app: its settings and signing key."""

    settings: ConsoleSettings
    key: bytes


@dataclass(frozen=True)
class Viewer:
    """The person at the browser: the key's principal, the session id and its CSRF token."""

    principal: Principal
    sid: str
    csrf: str
    auth_on: bool
    key_name: str | None = None

    def can(self, scope: str) -> bool:
        return self.principal.allows(scope)

    @property
    def name(self) -> str:
        return self.key_name or self.principal.name

    def need(self, scope: str) -> None:
        """Refuse (403, shown as a page) when the key lacks ``scope``."""
        if not self.can(scope):
            raise ApiError(403, f"the API key {self.name} lacks the {scope!r} scope (it has: "
                           f"{', '.join(sorted(self.principal.scopes))}); sign in with another key")


def hub_of(request: Request) -> Hub:
    return request.app.state.hub  # type: ignore[no-any-return]


def state_of(request: Request) -> ConsoleState:
    """The console's settings and key, made on the first request of an app."""
    found = getattr(request.app.state, "console", None)
    if found is None:
        settings = hub_of(request).engine.settings.section(ConsoleSettings)
        found = ConsoleState(settings, signing_key(settings, hub_of(request).engine.settings.home))
        request.app.state.console = found
    return found  # type: ignore[no-any-return]


# -- the cookie ------------------------------------------------------------------------------------


def _mac(key: bytes, body: str) -> str:
    return base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()).decode().rstrip("=")


def seal(key: bytes, payload: dict[str, Any]) -> str:
    """``payload`` as a signed cookie value."""
    body = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_mac(key, body)}"


def unseal(key: bytes, value: str | None, now: float | None = None) -> dict[str, Any] | None:
    """The payload of a cookie this server signed and that has not expired, else None."""
    if not value or "." not in value:
        return None
    body, mac = value.rsplit(".", 1)
    if not hmac.compare_digest(mac, _mac(key, body)):
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
    if not isinstance(payload, dict) or payload.get("exp", 0) < (now or time.time()):
        return None
    return payload


def csrf_token(key: bytes, sid: str) -> str:
    return _mac(key, f"csrf:{sid}")


def new_session(request: Request, key: str | None = None) -> dict[str, Any]:
    """A fresh session (new id); it is written on the response by the console's route class."""
    state = state_of(request)
    payload: dict[str, Any] = {"sid": secrets.token_urlsafe(16), "exp": time.time() + state.settings.session_ttl}
    if key:
        payload["key"] = key
    request.state.console_session = payload
    return payload


def _write_cookie(request: Request, response: Response, payload: dict[str, Any] | None) -> None:
    state = state_of(request)
    secure = state.settings.secure_cookie
    if secure is None:
        secure = request.url.scheme == "https"
    if payload is None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
        return
    response.set_cookie(
        COOKIE, seal(state.key, payload), max_age=int(payload["exp"] - time.time()), path="/",
        httponly=True, samesite="strict", secure=secure,
    )


def end_session(request: Request) -> None:
    request.state.console_session = None


# -- who is looking --------------------------------------------------------------------------------


def here(request: Request) -> str:
    """This page's path and query (where to come back after signing in)."""
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def viewer(request: Request) -> Viewer:
    """A dependency: the person at the browser (redirects to sign-in when a key is needed)."""
    hub = hub_of(request)
    state = state_of(request)
    payload = unseal(state.key, request.cookies.get(COOKIE))
    if payload is None:
        payload = new_session(request)
    sid = str(payload["sid"])
    csrf = csrf_token(state.key, sid)
    if not hub.keys_configured():
        from hub.api.auth import OPEN

        request.state.console_viewer = Viewer(OPEN, sid, csrf, auth_on=False)
        return request.state.console_viewer  # type: ignore[no-any-return]
    token = payload.get("key")
    if not token:
        raise SignInRequired(here(request))
    try:
        principal = authenticate(hub, str(token))
    except ApiError:
        new_session(request)
        raise SignInRequired(here(request), "Your API key is no longer accepted; sign in again.") from None
    name = None
    if principal.key_id and principal.key_id != "bootstrap":
        with contextlib.suppress(HubError):
            name = hub.api_store.get_key(principal.key_id)["name"]
    request.state.console_viewer = Viewer(principal, sid, csrf, auth_on=True, key_name=name)
    return request.state.console_viewer  # type: ignore[no-any-return]


def check_csrf(request: Request, who: Viewer, given: str | None) -> None:
    """Refuse a state-changing request whose token is not this session's."""
    token = given or request.headers.get(CSRF_HEADER) or ""
    if not hmac.compare_digest(token.encode(), who.csrf.encode()):
        raise ApiError(403, "the form is stale or came from another site (CSRF token mismatch); reload the page "
                       "and submit again", type="CsrfFailed")


async def form(request: Request, who: Viewer) -> dict[str, str]:
    """The fields of a posted form (urlencoded), after the CSRF check."""
    body = (await request.body()).decode("utf-8", "replace")
    fields = {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}
    check_csrf(request, who, fields.pop("csrf", None))
    return fields


# -- the route class -------------------------------------------------------------------------------


class ConsoleRoute(APIRoute):
    """Console routes answer HTML: a sign-in redirect, the hub's errors as a page, the session
    cookie written whenever the request changed it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                target = "/signin?next=" + quote(exc.next_url, safe="")
                if exc.notice:
                    target += "&notice=revoked"
                response = RedirectResponse(target, status_code=303)
            except HubError as exc:
                response = error_page(request, hub_error_status(exc), hub_error_message(exc), hub_error_details(exc))
            except HTTPException as exc:
                response = error_page(request, exc.status_code, str(exc.detail), [])
            except Exception as exc:  # a bug: a page that says so, the details in the server log
                log.exception("console page %s failed", request.url.path)
                response = error_page(request, 500, f"internal error ({type(exc).__name__}); the server log has "
                                      "details", [])
            if hasattr(request.state, "console_session"):
                _write_cookie(request, response, request.state.console_session)
            return response

        return wrapped


def error_page(request: Request, status: int, message: str, details: list[dict[str, Any]]) -> Response:
    from hub.console.render import render

    titles = {401: "Sign-in needed", 403: "Not allowed", 404: "Not found", 409: "Not possible now",
              422: "Not valid"}
    return render(request, None, "error.html", status=status, title=titles.get(status, "Something went wrong"),
                  message=message, details=details)
