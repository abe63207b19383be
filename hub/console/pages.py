"""The console's router (mounted at ``/``): sign-in and sign-out, the packaged static files, the
offline API docs (``/docs``, ``/redoc``), and every page module's routes."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from hub.api.auth import authenticate
from hub.api.errors import ApiError
from hub.console import approvals, executions, flows, prompts, traces
from hub.console.render import CSP, STATIC, render
from hub.console.session import ConsoleRoute, Viewer, check_csrf, end_session, hub_of, new_session, viewer

STATIC_PREFIX = "/console-static"


def api_docs_assets() -> Path:
    """Swagger UI and ReDoc as shipped by the ``fastapi-offline`` package (see static/README.md)."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path on this server (no ``//host`` or scheme) is a place to go back to."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/flows"
    return value


@router.get("/signin")
def signin_page(request: Request, next: str | None = None, notice: str | None = None) -> Response:
    hub = hub_of(request)
    if not hub.keys_configured():
        return RedirectResponse(_safe_next(next), status_code=303)
    payload = new_session(request)
    from hub.console.session import csrf_token, state_of

    message = "Your API key is no longer accepted; sign in again." if notice == "revoked" else None
    return render(request, None, "signin.html", title="Sign in", next=_safe_next(next), error=message,
                  csrf=csrf_token(state_of(request).key, payload["sid"]))


@router.post("/signin")
async def signin(request: Request) -> Response:
    """Check the key, then keep it in a new signed session (a fresh id: no fixation)."""
    from urllib.parse import parse_qs

    from hub.console.session import COOKIE, csrf_token, state_of, unseal

    fields = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    state = state_of(request)
    old = unseal(state.key, request.cookies.get(COOKIE)) or {}
    expected = csrf_token(state.key, str(old.get("sid", "")))
    import hmac

    if not old or not hmac.compare_digest(fields.get("csrf", "").encode(), expected.encode()):
        raise ApiError(403, "the sign-in form is stale (CSRF token mismatch); reload the page and try again",
                       type="CsrfFailed")
    key = fields.get("key", "").strip()
    target = _safe_next(fields.get("next"))
    try:
        authenticate(hub_of(request), key)
    except ApiError as exc:
        payload = new_session(request)
        return render(request, None, "signin.html", status=401, title="Sign in", next=target, error=str(exc),
                      csrf=csrf_token(state.key, payload["sid"]))
    new_session(request, key)
    return RedirectResponse(target, status_code=303)


@router.post("/signout")
async def signout(request: Request, who: Viewer = Depends(viewer)) -> Response:
    from urllib.parse import parse_qs

    fields = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
    check_csrf(request, who, fields.get("csrf"))
    end_session(request)
    return RedirectResponse("/signin" if who.auth_on else "/flows", status_code=303)


@router.get(STATIC_PREFIX + "/{name:path}")
def static(name: str) -> Response:
    """The console's own files, and the API docs' under ``api/``."""
    root, rel = (api_docs_assets(), name[4:]) if name.startswith("api/") else (STATIC, name)
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise ApiError(404, f"no static file {name!r}")
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "public, max-age=3600"})


DOCS = """<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>
<meta name=viewport content="width=device-width,initial-scale=1">{head}</head><body>{body}</body></html>"""


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI from packaged files; "Try it out" sends the key given under "Authorize"."""
    spec = quote(request.app.openapi_url or "/openapi.json")
    head = f'<link rel=stylesheet href="{STATIC_PREFIX}/api/swagger-ui.css">'
    body = (f'<div id=swagger-ui></div><script src="{STATIC_PREFIX}/api/swagger-ui-bundle.js"></script>'
            f'<script src="{STATIC_PREFIX}/api-docs.js" data-spec="{spec}" data-kind=swagger></script>')
    return HTMLResponse(DOCS.format(title="hub API — Swagger UI", head=head, body=body),
                        headers={"Content-Security-Policy": CSP})


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    spec = quote(request.app.openapi_url or "/openapi.json")
    body = (f'<div id=redoc></div><script src="{STATIC_PREFIX}/api/redoc.standalone.js"></script>'
            f'<script src="{STATIC_PREFIX}/api-docs.js" data-spec="{spec}" data-kind=redoc></script>')
    # ReDoc links its maker's logo from their CDN: the policy keeps the browser from fetching it
    style = "<style>body{margin:0}a[href*='redocly.com']{display:none}</style>"
    return HTMLResponse(DOCS.format(title="hub API — ReDoc", head=style, body=body),
                        headers={"Content-Security-Policy": CSP})


for module in (flows, executions, traces, approvals, prompts):
    router.include_router(module.router)
