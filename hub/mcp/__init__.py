"""MCP, both ways (a built-in plugin, :mod:`hub.mcp.plugin`).

- The hub as a client: :mod:`hub.mcp.client` talks to MCP servers with the official SDK (stdio or
  streamable HTTP); :mod:`hub.mcp.tasks` are the ``mcp.tools`` and ``mcp.call`` task kinds an
  ``llm.agent`` step runs for an ``mcp:`` tool entry.
- The hub as a server: :mod:`hub.api.mcp_server` offers the deployed flows as MCP tools, scoped by
  API key, over the API's own functions; ``hub mcp`` (:mod:`hub.service.mcp_cli`) serves them over
  stdio or streamable HTTP, and ``hub serve`` at ``/mcp`` (:mod:`hub.api.mcp_http`). Those are the
  app's (they use the API's keys, context and enrichment); this package registers them.
"""
