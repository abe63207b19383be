"""``hub mcp``: the hub's flows as MCP tools for an outside assistant (Claude Desktop, an IDE, an
agent framework), over stdio (the default: the assistant starts ``hub mcp`` itself) or streamable
HTTP (``--http``: the API server with its ``/mcp`` endpoint).

It builds an engine and the API's context, as ``hub serve`` does: service wiring, so it lives here
and not in the MCP feature (:mod:`hub.mcp`), which knows no app."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import click

from hub.cli import user_errors
from hub.errors import HubError

log = logging.getLogger(__name__)


@click.command()
@click.option("--http", "http", is_flag=True,
              help="Serve streamable HTTP at http://HOST:PORT/mcp (with the whole API, as hub serve) instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (--http).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535), help="Port (--http).")
@click.option("--key", envvar="HUB_MCP_KEY", default=None,
              help="API key whose scopes decide the flows offered and callable (stdio; env HUB_MCP_KEY). "
              "Required once any key exists; over HTTP each request sends its own.")
@click.option("--flows", "flows_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of flows deployed at start-up (default with --http: HUB_FLOWS_DIR or flows/).")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False))
@click.pass_context
@user_errors
def mcp(ctx: click.Context, http: bool, host: str, port: int, key: str | None, flows_dir: Path | None,
        log_level: str) -> None:
    """Serve the hub's deployed flows as MCP tools: tools/list gives each flow the key may run
    (scope run, or run:NAMESPACE) with its inputs as the JSON Schema; tools/call runs it like
    POST /v1/enrich and answers its outputs (or the execution's id while it still runs or waits
    for an approval).

    \b
    Claude Desktop (claude_desktop_config.json):
      {"mcpServers": {"hub": {"command": "hub", "args": ["mcp"],
                              "env": {"HUB_MCP_KEY": "hub_...", "HUB_HOME": "/srv/hub"}}}}
    Over HTTP: hub mcp --http --port 8080  (or any hub serve: the endpoint is /mcp), with
    'Authorization: Bearer <key>' on every request.

    Logs go to stderr; stdout is the MCP channel.
    """
    if http:
        from hub.service.api_cli import serve

        click.echo(f"MCP endpoint: http://{host}:{port}/mcp", err=True)
        ctx.invoke(serve, host=host, port=port, flows_dir=flows_dir, log_level=log_level)
        return
    from hub.cli import settings as process_settings

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(serve_stdio(process_settings(), key, flows_dir))


async def serve_stdio(settings: Any, key: str | None, flows_dir: Path | None) -> None:
    """Answer MCP requests on stdin/stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    from hub.api import mcp_server as server
    from hub.api.app import deploy_folder
    from hub.api.auth import authenticate
    from hub.api.context import Hub, Waiter
    from hub.api.errors import ApiError
    from hub.api.limits import build_limits
    from hub.api.settings import ApiSettings
    from hub.service.runtime import build_engine, close_engine
    from hub.store.api_store import ApiStore

    engine = build_engine(settings)
    api_settings = settings.section(ApiSettings)
    limiter, cache = build_limits(api_settings, engine)
    hub = Hub(engine=engine, api_store=ApiStore(engine.store, api_settings.flow_cache_ttl), settings=api_settings,
              waiter=Waiter(engine), limiter=limiter, cache=cache)
    heartbeat = asyncio.create_task(engine.heartbeat_loop(), name="heartbeat")
    try:
        try:
            principal = authenticate(hub, key)
        except ApiError as exc:
            raise HubError(f"{exc}" if key else "an API key is required (keys exist): hub mcp --key KEY, or set "
                           "HUB_MCP_KEY (create one with 'hub keys create assistant --scope run')") from None
        if flows_dir is not None:
            saved, problems = deploy_folder(hub, flows_dir)
            for problem in problems:
                log.warning("skipped an invalid flow: %s", problem)
        mcp_server = server.build(lambda ctx: (hub, principal))
        async with stdio_server() as (read, write):
            await mcp_server.run(read, write, mcp_server.create_initialization_options())
    finally:
        heartbeat.cancel()
        await asyncio.gather(heartbeat, *hub.background, return_exceptions=True)
        await hub.close()
        await close_engine(engine)
