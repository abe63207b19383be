"""``hub mcp``: the hub's flows as MCP tools, answered to the official SDK's client over stdio (the
command in its own process) and over streamable HTTP (``/mcp`` of the API server), scoped by key."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from hub.api.app import create_app
from hub.api.context import ApiSettings
from hub.flow.loader import load_text
from hub.store.api_store import ApiStore
from hub.testing import make_engine

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

QUOTE = """
id: quote
namespace: sales
description: Price a quote for a customer.
inputs:
  - {id: customer, type: string, required: true, description: Who asks.}
  - {id: seats, type: int, default: 1}
  - {id: plan, type: enum, values: [team, business]}
tasks:
  - {id: price, type: set, values: {total: "{{ inputs.seats * 12 }}"}}
outputs:
  total: "{{ outputs.price.total }}"
  customer: "{{ inputs.customer }}"
"""

PURGE = """
id: purge_cache
namespace: ops
description: Purge the CDN cache.
tasks:
  - {id: done, type: set, values: {ok: true}}
outputs: {ok: "{{ outputs.done.ok }}"}
"""


def flows_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "quote.yaml").write_text(QUOTE)
    (folder / "purge.yaml").write_text(PURGE)
    return folder


async def exercise(session: ClientSession) -> dict[str, Any]:
    """tools/list, then a good call and a call with bad inputs."""
    listed = await session.list_tools()
    tools = {tool.name: tool for tool in listed.tools}
    good = await session.call_tool("sales__quote", {"customer": "ACME", "seats": 3})
    bad = await session.call_tool("sales__quote", {"seats": "many"})
    return {"tools": tools, "good": good, "bad": bad}


def check_sales_only(seen: dict[str, Any]) -> None:
    assert sorted(seen["tools"]) == ["sales__quote"]  # the ops flow is not visible to a run:sales key
    tool = seen["tools"]["sales__quote"]
    assert tool.description == "Price a quote for a customer. (flow sales.quote)"
    schema = tool.input_schema
    assert schema["required"] == ["customer"]
    assert schema["properties"]["seats"] == {"type": "integer", "default": 1}
    assert schema["properties"]["plan"] == {"enum": ["team", "business"]}
    good = seen["good"]
    assert not good.is_error
    assert good.structured_content["outputs"] == {"total": 36, "customer": "ACME"}
    assert good.structured_content["state"] == "SUCCESS"
    bad = seen["bad"]
    assert bad.is_error and "InputError" in bad.content[0].text and "customer" in bad.content[0].text


async def test_hub_mcp_over_stdio_lists_and_runs_the_flows_a_key_may_run(store, tmp_path):
    api = ApiStore(store)
    _, sales_key = api.create_key("assistant", ["run:sales"])
    env = {**os.environ, "HUB_HOME": str(tmp_path / "home"), "PYTHONPATH": str(ROOT),
           "HUB_DATABASE_URL": store.engine.url.render_as_string(hide_password=False), "HUB_MCP_KEY": sales_key}
    env.pop("HUB_REDIS_URL", None)
    params = StdioServerParameters(command=sys.executable, args=["-m", "hub.cli", "mcp", "--flows", str(flows_dir(tmp_path))],
                                   env=env, cwd=str(tmp_path))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.server_info.name == "hub"
        seen = await exercise(session)
        outside = await session.call_tool("ops__purge_cache", {})
    check_sales_only(seen)
    assert outside.is_error and "no flow of that name that this API key" in outside.content[0].text
    [execution] = store.list_executions(flow_id="quote", states=["SUCCESS"])
    assert execution["trigger"]["type"] == "enrich" and execution["inputs"]["seats"] == 3


async def test_hub_mcp_over_stdio_needs_a_key_once_keys_exist(store, tmp_path):
    ApiStore(store).create_key("someone", ["run"])
    env = {**os.environ, "HUB_HOME": str(tmp_path / "home"),
           "HUB_DATABASE_URL": store.engine.url.render_as_string(hide_password=False)}
    env.pop("HUB_MCP_KEY", None)
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "hub.cli", "mcp", env=env, cwd=str(ROOT),
                                                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(b""), 60)
    assert proc.returncode != 0
    assert "an API key is required (keys exist): hub mcp --key KEY" in err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def api_server(app: Any) -> AsyncIterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the API server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def http_session(url: str, key: str | None) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with create_mcp_http_client(headers=headers) as http, \
            streamable_http_client(url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def test_hub_mcp_over_http_scoped_by_the_requests_key(store, tmp_path):
    engine = make_engine(store, home=tmp_path / "home")
    engine.deploy(load_text(QUOTE))
    engine.deploy(load_text(PURGE))
    api = ApiStore(store)
    _, sales_key = api.create_key("assistant", ["run:sales"])
    _, admin_key = api.create_key("ops", ["run"])
    _, reader_key = api.create_key("auditor", ["read"])
    app = create_app(engine, settings=ApiSettings(enrich_timeout=10), background=False)
    async with api_server(app) as base:
        async with http_session(f"{base}/mcp", sales_key) as session:
            seen = await exercise(session)
        async with http_session(f"{base}/mcp", admin_key) as session:
            everything = sorted(t.name for t in (await session.list_tools()).tools)
            purged = await session.call_tool("ops__purge_cache", {})
        async with http_session(f"{base}/mcp", reader_key) as session:
            nothing = (await session.list_tools()).tools
        import httpx

        async with httpx.AsyncClient() as plain:
            refused = await plain.post(f"{base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                                       headers={"Accept": "application/json, text/event-stream"})
            # the namespaced scope holds for the enrichment API too
            auth = {"Authorization": f"Bearer {sales_key}"}
            enriched = await plain.post(f"{base}/v1/enrich/sales/quote", json={"customer": "B"}, headers=auth)
            elsewhere = await plain.post(f"{base}/v1/enrich/ops/purge_cache", json={}, headers=auth)
            listing = await plain.get(f"{base}/v1/flows", headers=auth)
    check_sales_only(seen)
    assert everything == ["ops__purge_cache", "sales__quote"]
    assert not purged.is_error and purged.structured_content["outputs"] == {"ok": True}
    assert nothing == []
    assert refused.status_code == 401 and "an API key is required" in refused.json()["detail"]
    assert enriched.status_code == 200 and enriched.json()["outputs"] == {"total": 12, "customer": "B"}
    assert elsewhere.status_code == 403 and "lacks the 'run' scope" in elsewhere.json()["detail"]
    assert listing.status_code == 403  # a namespaced key is for running its flows, not for the rest of /v1


def test_namespaced_scopes_are_checked_when_a_key_is_created(store):
    api = ApiStore(store)
    row, _ = api.create_key("team", ["run:sales.emea", "read:sales"])
    assert row["scopes"] == ["read:sales", "run:sales.emea"]
    with pytest.raises(ValueError, match="run:<namespace> or read:<namespace>; got approve:sales"):
        api.create_key("bad", ["approve:sales"])
