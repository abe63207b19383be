"""Built-in plugin: MCP task kinds, the ``hub mcp`` command and the ``/mcp`` endpoint of ``hub serve``."""

from __future__ import annotations

from hub.core.plugins import PluginAPI


def register(hub: PluginAPI) -> None:
    hub.task_kind("mcp.tools", "hub.mcp.tasks:McpTools")
    hub.task_kind("mcp.call", "hub.mcp.tasks:McpCall")
    hub.command("mcp", "hub.service.mcp_cli:mcp")
    hub.router("hub.api.mcp_http:router", prefix="")
