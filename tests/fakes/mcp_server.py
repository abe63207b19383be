"""A small MCP server written with the official SDK (``MCPServer``): a ticket desk with three tools.

Every call is appended to the JSON-lines file ``MCP_TOOL_LOG`` names (when set), so a test can
count the calls the server received. Run it over stdio (``python -m tests.fakes.mcp_server``) or
over streamable HTTP (``python -m tests.fakes.mcp_server --http PORT``, at ``/mcp``).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("tickets", instructions="A ticket desk for tests.")


def _log(tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
    path = os.environ.get("MCP_TOOL_LOG")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"tool": tool, "arguments": arguments, **({"meta": meta} if meta else {})}) + "\n")


@server.tool()
def find_ticket(customer: str, ctx: Context) -> dict[str, Any]:
    """Find the open ticket of a customer."""
    _log("find_ticket", {"customer": customer}, dict(ctx.request_context.meta or {}))
    return {"ticket": "T-42", "customer": customer, "status": "open"}


@server.tool()
def close_ticket(ticket: str, resolution: str) -> str:
    """Close a ticket with a resolution."""
    _log("close_ticket", {"ticket": ticket, "resolution": resolution})
    return f"closed {ticket}: {resolution}"


@server.tool()
def explode(reason: str) -> str:
    """Always fails (to test a tool's error)."""
    _log("explode", {"reason": reason})
    raise ToolError(f"the desk is on fire: {reason}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--http"]:
        import uvicorn

        app = server.streamable_http_app(host="127.0.0.1")
        uvicorn.run(app, host="127.0.0.1", port=int(argv[1]), log_level="warning")
    else:
        server.run("stdio")


if __name__ == "__main__":
    main(sys.argv[1:])
