"""Talking to an MCP server with the official SDK: over stdio (a command the hub starts) or
streamable HTTP (a URL). A connection is opened per use, or kept for the life of a step when the
step hands a :class:`~hub.tasks.base.StepResources` (an agent keeps one per MCP server for all its
tool calls)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from anyio import fail_after as anyio_timeout
from pydantic import Field, model_validator

from hub.errors import TaskError
from hub.tasks.base import Params, StepResources


class McpServer(Params):
    """Where an MCP server is: ``command`` (stdio) or ``url`` (streamable HTTP)."""

    command: str | None = Field(None, description="The program that runs the server over stdio (e.g. npx, uvx).")
    args: list[str] = Field(default_factory=list, description="Its arguments.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables for it (over the hub's).")
    cwd: str | None = Field(None, description="Its working directory.")
    url: str | None = Field(None, description="The server's streamable HTTP endpoint (https://.../mcp).")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers (e.g. Authorization).")
    timeout: float = Field(60.0, gt=0, le=3600, description="Seconds to wait for an answer.")

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("give the MCP server's 'command' (stdio) or its 'url' (streamable HTTP), one of them")
        return self

    @property
    def label(self) -> str:
        return self.url or " ".join([self.command or "", *self.args])

    def key(self) -> str:
        return json.dumps(self.model_dump(), sort_keys=True)


@contextlib.asynccontextmanager
async def connect(server: McpServer) -> AsyncIterator[Any]:
    """An initialized ``mcp.ClientSession`` to ``server``; closed (and a stdio server stopped) on exit.

    The SDK's context managers are closed as after a normal end whatever happened: an exception
    passed into their task groups would come out wrapped in an exception group."""
    stack = contextlib.AsyncExitStack()
    try:
        session = await _open(server, stack)
    except BaseException as exc:
        raise await _closed(stack, exc, f"cannot connect to the MCP server {server.label}", opening=True) from None
    try:
        yield session
    except BaseException as exc:
        raise await _closed(stack, exc, f"the connection to the MCP server {server.label} failed") from None
    await _closed(stack)


async def _closed(stack: contextlib.AsyncExitStack, exc: BaseException | None = None, what: str = "",
                  opening: bool = False) -> BaseException:
    """Close the SDK's context managers; what to raise for ``exc``. A transport that fails cancels
    the task that uses it (its task group's scope): that cancellation becomes the transport's real
    error as a :class:`TaskError`; a cancellation from outside stays one, and so does an error of
    the body. Any error while ``opening`` is a :class:`TaskError` saying so."""
    try:
        await stack.aclose()
    except Exception as closing:
        if exc is not None and not isinstance(exc, Exception):
            return TaskError(f"{what}: {_reason(closing)}")
    if opening and isinstance(exc, Exception):
        return TaskError(f"{what}: {_reason(exc)}")
    return exc if exc is not None else RuntimeError("closed")


async def _open(server: McpServer, stack: contextlib.AsyncExitStack) -> Any:
    from mcp import ClientSession, StdioServerParameters, stdio_client
    from mcp.client.streamable_http import streamable_http_client

    if server.command is not None:
        params = StdioServerParameters(command=server.command, args=server.args, env=server.env or None, cwd=server.cwd)
        read, write = await stack.enter_async_context(stdio_client(params))
    else:
        from mcp.shared._httpx_utils import create_mcp_http_client

        http = await stack.enter_async_context(create_mcp_http_client(headers=server.headers or None))
        read, write = await stack.enter_async_context(streamable_http_client(str(server.url), http_client=http))
    session = await stack.enter_async_context(ClientSession(read, write, read_timeout_seconds=server.timeout))
    with anyio_timeout(server.timeout):
        await session.initialize()
    return session


@contextlib.asynccontextmanager
async def session_for(server: McpServer, resources: StepResources | None) -> AsyncIterator[Any]:
    """A session to ``server``: the step's kept one (opened on first use), else one for this use.

    What the body raises is not passed into the SDK's context managers (their task groups would
    wrap it in an exception group): they are closed as if the body had ended normally."""
    if resources is not None:
        sessions = resources.cache.setdefault("mcp.sessions", {})
        key = server.key()
        if key not in sessions:
            sessions[key] = await resources.enter_async_context(connect(server))
        yield sessions[key]
        return
    async with connect(server) as session:
        yield session


async def list_tools(session: Any) -> list[dict[str, Any]]:
    """Every tool the server offers (all pages): ``{name, description, input_schema}``."""
    tools: list[dict[str, Any]] = []
    cursor = None
    while True:
        from mcp.types import PaginatedRequestParams

        page = await session.list_tools(params=PaginatedRequestParams(cursor=cursor) if cursor else None)
        tools += [{"name": t.name, "description": t.description or t.title or "",
                   "input_schema": dict(t.input_schema or {"type": "object", "properties": {}})} for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            return tools


IDEMPOTENCY_META = "dev.hub/idempotency-key"
"""The ``_meta`` key of a tools/call that carries the step's idempotency key (a server may dedupe on it)."""


async def call_tool(session: Any, server: McpServer, name: str, arguments: dict[str, Any],
                    idempotency_key: str | None = None) -> dict[str, Any]:
    """Call ``name``: ``{"content": [...], "text": ..., "structured": ...}``. A result the server
    marks as an error raises :class:`TaskError` (not retryable: the tool said no)."""
    meta = {IDEMPOTENCY_META: idempotency_key} if idempotency_key else None
    try:
        result = await session.call_tool(name, arguments, meta=meta)
    except Exception as exc:
        raise TaskError(f"MCP server {server.label}: tools/call {name} failed: {_reason(exc)}") from None
    content = [block.model_dump(mode="json", exclude_none=True) for block in result.content]
    text = "\n".join(block["text"] for block in content if block.get("type") == "text")
    if result.is_error:
        raise TaskError(f"MCP tool {name}: {text or 'the server reported an error'}", retryable=False)
    out: dict[str, Any] = {"content": content, "text": text}
    if result.structured_content is not None:
        out["structured"] = result.structured_content
    return out


def _reason(exc: BaseException) -> str:
    """The first real error of an exception group (anyio wraps transport failures in them)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"
