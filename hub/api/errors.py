"""Errors to HTTP, once, at the edge: one JSON shape for every failure.

    {"error": {"type": "NotFound", "message": "flow sales.leads not found", "details": []}}

``details`` lists locations (flow file errors: file, line, column, path, message) or fields
(request validation: path, message).
"""

from __future__ import annotations

import logging
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


def error_body(type_: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, "details": details or []}}


def error_response(
    status: int, type_: str, message: str, details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(type_, message, details), status_code=status, headers=headers)


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
        hub_error_status(exc), hub_error_type(exc), hub_error_message(exc), hub_error_details(exc), headers
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
    return error_response(status, STATUS_TYPES[status], message, details)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else STATUS_TYPES.get(exc.status_code, "error")
    if exc.status_code == 404 and message == "Not Found":
        message = f"no such endpoint: {request.method} {request.url.path}"
    if exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(
        exc.status_code, STATUS_TYPES.get(exc.status_code, "Error"), message, headers=getattr(exc, "headers", None)
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(500, "InternalError", f"internal error ({type(exc).__name__}); the server log has details")


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
