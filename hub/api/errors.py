"""Errors to HTTP, once, at the edge: every failure is an RFC 9457 problem (``application/problem+json``).

    {"type": "tag:hub,2026:problem:NotFound", "title": "Not found", "status": 404,
     "detail": "flow sales.leads not found", "instance": "/v1/flows/sales/leads",
     "code": "NotFound", "details": [],
     "error": {"type": "NotFound", "message": "flow sales.leads not found", "details": []}}

``type`` is a tag URI (RFC 4151: an identifier, not a page to fetch) ending in the hub's short name
of the problem, which is also the extension ``code``. ``details`` lists locations (flow file
errors: file, line, column, path, message) or fields (request validation: path, message).
``error`` is the body clients read before problem details (``type``, ``message``, ``details``),
kept as an extension member so they go on working.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub.errors import ExpressionError, FlowError, HubError, InputError, NotFound

log = logging.getLogger(__name__)

STATUS_TYPES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "Unprocessable",
    429: "TooManyRequests",
    500: "InternalError",
    503: "Unavailable",
}


class ApiError(HubError):
    """A failure the API itself decides on (auth, rate limit, conflicts), with its HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.type = type or STATUS_TYPES.get(status, "Error")
        self.details = details or []
        self.headers = headers


PROBLEM_TYPE_BASE = "tag:hub,2026:problem:"
PROBLEM_MEDIA_TYPE = "application/problem+json"


def problem_type(code: str) -> str:
    """The ``type`` URI of the hub's problem ``code`` (``NotFound`` -> ``tag:hub,2026:problem:NotFound``)."""
    return PROBLEM_TYPE_BASE + code


def problem_title(code: str) -> str:
    """A short, fixed summary of the problem type: ``FlowError`` -> ``Flow error``."""
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", code) or [code]
    return " ".join([words[0]] + [w if w.isupper() and len(w) > 1 else w.lower() for w in words[1:]])


def error_body(type_: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The hub's own error object (``{"error": {...}}``): per item of a batch, and inside a problem."""
    return {"error": {"type": type_, "message": message, "details": details or []}}


def problem(
    status: int, code: str, detail: str, details: list[dict[str, Any]] | None = None,
    *, instance: str | None = None, **extensions: Any,
) -> dict[str, Any]:
    """An RFC 9457 problem object with the hub's fields as extension members."""
    body: dict[str, Any] = {
        "type": problem_type(code), "title": problem_title(code), "status": status, "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(code=code, details=details or [], **extensions)
    body.update(error_body(code, detail, details))
    return body


def error_response(
    status: int, type_: str, message: str, details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None, *, instance: str | None = None, **extensions: Any,
) -> JSONResponse:
    """A ``application/problem+json`` response."""
    return JSONResponse(
        problem(status, type_, message, details, instance=instance, **extensions),
        status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE,
    )


def hub_error_type(exc: HubError) -> str:
    return exc.type if isinstance(exc, ApiError) else type(exc).__name__


def hub_error_status(exc: HubError) -> int:
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, FlowError | InputError | ExpressionError):
        return 422
    return 409  # a well-formed request the current state does not allow (disabled flow, wrong state)


def hub_error_details(exc: HubError) -> list[dict[str, Any]]:
    if isinstance(exc, ApiError):
        return exc.details
    if isinstance(exc, FlowError):
        return [loc.to_dict() for loc in exc.locations]
    if isinstance(exc, InputError):
        return [{"path": _input_path(p), "message": p} for p in exc.problems]
    return []


def _input_path(problem: str) -> str:
    head = problem.split(":", 1)[0].strip().strip("'")
    return f"inputs.{head}" if head and " " not in head else "inputs"


def hub_error_message(exc: HubError) -> str:
    if isinstance(exc, FlowError):
        count = len(exc.locations)
        return f"{exc.source or 'the flow'} has {count} error{'s' if count != 1 else ''}; see details"
    return str(exc)


async def _on_hub_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HubError)
    headers = exc.headers if isinstance(exc, ApiError) else None
    return error_response(
        hub_error_status(exc), hub_error_type(exc), hub_error_message(exc), hub_error_details(exc), headers,
        instance=request.url.path,
    )


async def _on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        details.append({"path": ".".join(loc), "message": err.get("msg", "invalid")})
    body_error = any(d["path"].startswith("body") and "JSON" in d["message"] for d in details)
    status = 400 if body_error else 422
    message = "the request body is not valid JSON" if body_error else "the request does not match the API; see details"
    return error_response(status, STATUS_TYPES[status], message, details, instance=request.url.path)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else STATUS_TYPES.get(exc.status_code, "error")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(
        exc.status_code, STATUS_TYPES.get(exc.status_code, "Error"), message, headers=getattr(exc, "headers", None),
        instance=request.url.path,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(
        500, "InternalError", f"internal error ({type(exc).__name__}); the server log has details",
        instance=request.url.path,
    )


def document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say ``application/problem+json`` for every error response (FastAPI
    files a ``responses=`` model under the route's own media type)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for operation in (op for path in schema.get("paths", {}).values() for op in path.values()):
                for status, response in (operation.get("responses") or {}).items():
                    content = response.get("content") if str(status)[:1] in ("4", "5") else None
                    refs = {str(media.get("schema", {}).get("$ref", "")) for media in (content or {}).values()}
                    if any(ref.endswith(("/Problem", "/HTTPValidationError")) for ref in refs):
                        # what the handlers answer, whatever the route's own media type
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    app.add_exception_handler(HubError, _on_hub_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


def parse_time(value: str | None, name: str) -> float | None:
    """A query parameter given as epoch seconds or ISO 8601 (``Z`` allowed); 400 otherwise (an
    HTTPException, so routers mounted without the hub's handlers answer it too)."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        pass
    from datetime import datetime

    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise StarletteHTTPException(400, f"{name} must be epoch seconds or an ISO 8601 time, got {value!r}") from None
