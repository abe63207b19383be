"""The ``http.request`` kind (httpx)."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
from pydantic import Field, model_validator

from hub.errors import ConnectorError, TaskError
from hub.flow.durations import Duration
from hub.tasks.base import Params, TaskContext


class BasicAuth(Params):
    username: str
    password: str


class BearerAuth(Params):
    token: str


class HttpParams(Params):
    url: str
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, Any] = Field(default_factory=dict)
    json_: Any = Field(None, alias="json", description="A JSON request body.")
    body: str | None = Field(None, description="A raw request body.")
    form: dict[str, Any] | None = Field(None, description="A form-encoded request body.")
    basic_auth: BasicAuth | None = None
    bearer_auth: BearerAuth | None = None
    timeout: Duration = Field(30.0, description="Whole-request timeout.")
    expected_status: list[int] | None = Field(
        None, description="Status codes that count as success (default: any 2xx/3xx)."
    )
    follow_redirects: bool = True

    @model_validator(mode="after")
    def _one_body(self) -> HttpParams:
        given = [name for name in ("json_", "body", "form") if getattr(self, name) is not None]
        if len(given) > 1:
            raise ValueError("give only one of json, body and form")
        return self


def parse_body(response: httpx.Response) -> Any:
    ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if not response.content:
        return None
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            return response.text
    if ctype.startswith("text/") or ctype in ("application/xml", "application/x-www-form-urlencoded", ""):
        return response.text
    try:
        return response.content.decode()
    except UnicodeDecodeError:
        return {"base64": __import__("base64").b64encode(response.content).decode(), "content_type": ctype}


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class HttpRequest:
    """Call an HTTP endpoint. Output: ``{"status", "headers", "body"}``, the body parsed by
    content type (JSON to data, text to a string).

    Statuses outside ``expected_status`` fail the step; 429 and 5xx are retryable.
    """

    type = "http.request"
    Params = HttpParams

    async def run(self, ctx: TaskContext, params: HttpParams) -> Any:
        headers = dict(params.headers)
        headers.setdefault("Idempotency-Key", ctx.idempotency_key)
        auth: Any = None
        if params.basic_auth:
            auth = httpx.BasicAuth(params.basic_auth.username, params.basic_auth.password)
        if params.bearer_auth:
            headers["Authorization"] = f"Bearer {params.bearer_auth.token}"
        content = params.body
        if params.json_ is not None:
            content = json.dumps(params.json_)
            headers.setdefault("Content-Type", "application/json")
        client = ctx.services.get("http_client")
        try:
            if client is None:
                async with httpx.AsyncClient(follow_redirects=params.follow_redirects) as own:
                    response = await self._send(own, params, headers, content, auth)
            else:
                response = await self._send(client, params, headers, content, auth)
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"{params.method} {params.url} timed out after {params.timeout}s: {exc}") from None
        except httpx.HTTPError as exc:
            raise ConnectorError(f"{params.method} {params.url} failed: {exc}") from None
        result = {
            "status": response.status_code,
            "headers": dict(response.headers),
            "body": parse_body(response),
        }
        ok = (
            response.status_code in params.expected_status
            if params.expected_status
            else response.status_code < 400
        )
        if not ok:
            raise ConnectorError(
                f"{params.method} {params.url} answered {response.status_code}",
                status=response.status_code,
                retry_after=_retry_after(response),
                data=ctx.redact(result),
            )
        return result

    @staticmethod
    async def _send(
        client: httpx.AsyncClient, params: HttpParams, headers: dict[str, str], content: Any, auth: Any
    ) -> httpx.Response:
        return await client.request(
            params.method,
            params.url,
            headers=headers,
            params=params.query or None,
            content=content,
            data=params.form,
            auth=auth,
            timeout=params.timeout,
            follow_redirects=params.follow_redirects,
        )


def register(registry: Any) -> None:
    if "http.request" not in registry:
        registry.add(HttpRequest)
    _ = TaskError
