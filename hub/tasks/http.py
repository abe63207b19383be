"""The ``http.request`` kind (httpx, behind the :mod:`hub.net` guard)."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from hub.core.tasks import ServiceKey
from hub.errors import ConnectorError
from hub.flow.durations import Duration
from hub.tasks.base import Params, TaskContext

if TYPE_CHECKING:  # httpx and the guard are imported when a request runs, not when flows load
    import httpx


HTTP_CLIENT: ServiceKey[httpx.AsyncClient] = ServiceKey("http_client")
"""A guarded client the process shares with its ``http.request`` steps; without one (or with a
client that is not guarded) each request opens its own guarded client."""


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


def decode_body(content_type: str, content: bytes) -> Any:
    """A response body as data: JSON parsed, text as a string, other bytes as base64."""
    ctype = content_type.split(";")[0].strip().lower()
    if not content:
        return None
    if ctype == "application/json" or ctype.endswith("+json"):
        try:
            return json.loads(content)
        except ValueError:
            return content.decode(errors="replace")
    if ctype.startswith("text/") or ctype in ("application/xml", "application/x-www-form-urlencoded", ""):
        return content.decode(errors="replace")
    try:
        return content.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(content).decode(), "content_type": ctype}


class HttpRequest:
    """Call an HTTP endpoint. Output: ``{"status", "url", "headers", "body"}``, the body parsed by
    content type (JSON to data, text to a string).

    Statuses outside ``expected_status`` fail the step; 429 and 5xx are retryable. Private,
    loopback and link-local destinations are refused unless allow-listed (``HUB_HTTP_ALLOW_HOSTS``,
    see :mod:`hub.net`), on the first request and on every redirect. Credentials never reach the
    output or the log: ``url`` and error messages have API keys and passwords masked, and
    credential headers (``Set-Cookie``, ...) are masked in ``headers``.
    """

    type = "http.request"
    Params = HttpParams

    async def run(self, ctx: TaskContext, params: HttpParams) -> Any:
        import httpx

        from hub.net import Guard, http_client, is_guarded, redact_headers, redact_url, retry_after
        from hub.net_settings import NetSettings

        net_settings = ctx.settings.section(NetSettings)
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
        shown = ctx.redact(redact_url(params.url))
        client = ctx.service(HTTP_CLIENT)
        try:
            if is_guarded(client):
                result = await self._send(client, params, headers, content, auth, net_settings.max_response_bytes)
            else:
                async with http_client(Guard.from_settings(net_settings)) as own:
                    result = await self._send(own, params, headers, content, auth, net_settings.max_response_bytes)
        except httpx.TimeoutException as exc:
            raise ConnectorError(
                f"{params.method} {shown} timed out after {params.timeout}s: {type(exc).__name__}"
            ) from None
        except httpx.TooManyRedirects:
            raise ConnectorError(f"{params.method} {shown}: too many redirects", retryable=False) from None
        except httpx.HTTPError as exc:
            raise ConnectorError(f"{params.method} {shown} failed: {ctx.redact(redact_url(str(exc)))}") from None
        response, body = result
        output = ctx.redact({
            "status": response.status_code,
            "url": redact_url(str(response.url)),
            "headers": redact_headers(response.headers.multi_items()),
            "body": body,
        })
        ctx.log(f"{params.method} {shown} -> {response.status_code}")
        ok = (
            response.status_code in params.expected_status
            if params.expected_status
            else response.status_code < 400
        )
        if not ok:
            raise ConnectorError(
                f"{params.method} {shown} answered {response.status_code}",
                status=response.status_code,
                retry_after=retry_after(response.headers),
                data=output,
            )
        return output

    @staticmethod
    async def _send(
        client: httpx.AsyncClient,
        params: HttpParams,
        headers: dict[str, str],
        content: Any,
        auth: Any,
        limit: int,
    ) -> tuple[httpx.Response, Any]:
        from hub.net import redact_url

        request = client.build_request(
            params.method,
            params.url,
            headers=headers,
            params=params.query or None,
            content=content,
            data=params.form,
            timeout=params.timeout,
        )
        response = await client.send(request, auth=auth, follow_redirects=params.follow_redirects, stream=True)
        try:
            buffer = bytearray()
            async for chunk in response.aiter_bytes():
                buffer.extend(chunk)
                if len(buffer) > limit:
                    raise ConnectorError(
                        f"{params.method} {redact_url(params.url)}: response body is larger than {limit} bytes "
                        "(raise HUB_HTTP_MAX_RESPONSE_BYTES to accept it)",
                        retryable=False,
                    )
        finally:
            await response.aclose()
        return response, decode_body(response.headers.get("content-type", ""), bytes(buffer))

