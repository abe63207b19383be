"""The hub as an MCP server: its deployed flows as tools an outside assistant can call.

``tools/list`` offers every enabled flow the caller's API key may run (a ``run`` scope, or one
narrowed to the flow's namespace: ``run:sales``), its typed inputs as the tool's input schema.
``tools/call`` runs the flow as ``POST /v1/enrich/{namespace}/{flow}`` does (in this process, a
normal persisted execution, rate limited per key) and answers its outputs; a flow still running
at the timeout (or paused for an approval) answers its execution id and state; a failed one, or
bad inputs, is a tool error the assistant can read and correct.

A tool is named ``<namespace>__<flow id>`` (dots of a namespace as ``_``): the names clients and
models accept (letters, digits, ``_`` and ``-``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from hub.api.auth import Principal
from hub.api.context import Hub
from hub.api.enrich import enrich_one
from hub.api.errors import hub_error_details, hub_error_message, hub_error_type
from hub.api.flows import runnable
from hub.errors import HubError
from hub.flow.input_schema import inputs_schema

Resolve = Callable[[Any], tuple[Hub, Principal]]
"""How a request finds the hub and who calls: from the MCP request context."""

SERVER_NAME = "hub"
INSTRUCTIONS = ("Each tool runs one of the hub's flows (a durable, traced automation) with the "
                "arguments as its inputs and answers the flow's outputs.")


def tool_name(namespace: str, flow_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", f"{namespace}__{flow_id}")[:128]


def visible(hub: Hub, principal: Principal) -> dict[str, tuple[str, str]]:
    """The flows ``principal`` may run, by tool name: ``{name: (namespace, flow_id)}``."""
    out: dict[str, tuple[str, str]] = {}
    for row in hub.engine.store.list_flows():
        if row.get("disabled") or not principal.allows_in("run", row["namespace"]):
            continue
        out[tool_name(row["namespace"], row["flow_id"])] = (row["namespace"], row["flow_id"])
    return out


def list_tools(hub: Hub, principal: Principal) -> list[Any]:
    """The MCP ``Tool`` of every flow ``principal`` may run."""
    from mcp.types import Tool, ToolAnnotations

    tools = []
    for name, (namespace, flow_id) in sorted(visible(hub, principal).items()):
        try:
            _, flow = hub.engine.catalog.get(namespace, flow_id)
        except HubError:
            continue  # deleted or unreadable meanwhile: not offered
        if flow.disabled:
            continue
        description = (flow.description or f"Run the flow {flow.key}.").strip()
        tools.append(Tool(
            name=name, title=flow.key, description=f"{description} (flow {flow.key})",
            input_schema=inputs_schema(flow),
            annotations=ToolAnnotations(title=flow.key, read_only_hint=False, open_world_hint=True),
        ))
    return tools


async def call_tool(hub: Hub, principal: Principal, name: str, arguments: dict[str, Any]) -> Any:
    """Run the flow behind ``name`` with ``arguments``: an MCP ``CallToolResult``."""
    flows = visible(hub, principal)
    if name not in flows:
        return _error(f"unknown tool {name!r}: no flow of that name that this API key ({principal.name}) may "
                      "run; tools/list shows those it may")
    namespace, flow_id = flows[name]
    wait = await hub.limiter.check(principal.name)
    if wait > 0:
        return _error(f"rate limit of {hub.limiter.rate:g} calls/s for key {principal.name} reached; "
                      f"retry in {wait:.2f}s")
    try:
        revision, flow = runnable(hub, namespace, flow_id)
        out = await enrich_one(hub, revision, flow, arguments, time.monotonic() + hub.settings.enrich_timeout)
    except HubError as exc:  # bad inputs, a disabled flow: the assistant reads it and corrects
        problems = "; ".join(f"{d['path']}: {d['message']}" for d in hub_error_details(exc) if d.get("path"))
        return _error(f"{hub_error_type(exc)}: {hub_error_message(exc)}" + (f" ({problems})" if problems else ""))
    if out.status == 200:
        return _result({"execution_id": out.execution_id, "state": out.state, "outputs": out.outputs}, text=out.outputs)
    if out.status == 202:
        return _result({"execution_id": out.execution_id, "state": out.state},
                       text=f"execution {out.execution_id} of {flow.key} is {out.state} (still running, or waiting "
                       "for an approval); its outputs are not known yet")
    return _error((out.error or {}).get("message", f"execution {out.execution_id} failed"))


def _result(structured: dict[str, Any], text: Any) -> Any:
    from mcp.types import CallToolResult, TextContent

    body = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, default=str)
    return CallToolResult(content=[TextContent(type="text", text=body)], structured_content=structured)


def _error(message: str) -> Any:
    from mcp.types import CallToolResult, TextContent

    return CallToolResult(content=[TextContent(type="text", text=message)], is_error=True)


def build(resolve: Resolve) -> Any:
    """The low-level MCP ``Server`` whose handlers find the hub and the caller with ``resolve``."""
    from mcp.server.lowlevel import Server
    from mcp.types import ListToolsResult

    async def on_list_tools(ctx: Any, params: Any) -> Any:
        hub, principal = resolve(ctx)
        return ListToolsResult(tools=list_tools(hub, principal))

    async def on_call_tool(ctx: Any, params: Any) -> Any:
        hub, principal = resolve(ctx)
        return await call_tool(hub, principal, params.name, dict(params.arguments or {}))

    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("hub")
    except PackageNotFoundError:
        release = "0"
    return Server(SERVER_NAME, version=release, instructions=INSTRUCTIONS,
                  on_list_tools=on_list_tools, on_call_tool=on_call_tool)
