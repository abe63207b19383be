"""Task kinds that use an MCP server: ``mcp.tools`` lists its tools, ``mcp.call`` calls one.

```yaml
- id: close
  type: mcp.call
  server: {command: uvx, args: [tickets-mcp]}     # or {url: https://desk.example.com/mcp, headers: {...}}
  tool: close_ticket
  arguments: {ticket: T-42, resolution: "{{ outputs.draft.value }}"}
```

An ``llm.agent`` step with an ``mcp:`` tool entry runs both as its child steps: the listing once
(committed, so a resumed agent offers the model the same tools), a call per tool call.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from hub.core.tasks import RESOURCES
from hub.mcp.client import McpServer, call_tool, list_tools, session_for
from hub.tasks.base import Params, StepResources, TaskContext


def _resources(ctx: TaskContext) -> StepResources | None:
    return ctx.service(RESOURCES)


class ToolsParams(Params):
    server: McpServer = Field(description="The MCP server: command (stdio) or url (streamable HTTP).")


class McpTools:
    """List an MCP server's tools (``tools/list``). Output: ``{"tools": [{name, description, input_schema}]}``."""

    type = "mcp.tools"
    Params = ToolsParams

    async def run(self, ctx: TaskContext, params: ToolsParams) -> Any:
        async with session_for(params.server, _resources(ctx)) as session:
            return {"server": params.server.label, "tools": await list_tools(session)}


class CallParams(Params):
    server: McpServer = Field(description="The MCP server: command (stdio) or url (streamable HTTP).")
    tool: str = Field(min_length=1, description="The tool's name.")
    arguments: dict[str, Any] = Field(default_factory=dict, description="Its arguments.")


class McpCall:
    """Call a tool of an MCP server (``tools/call``). Output: ``{"content", "text", "structured"?}``;
    a result the server flags as an error fails the step (not retryable)."""

    type = "mcp.call"
    Params = CallParams

    async def run(self, ctx: TaskContext, params: CallParams) -> Any:
        async with session_for(params.server, _resources(ctx)) as session:
            return await call_tool(session, params.server, params.tool, params.arguments, ctx.idempotency_key)
