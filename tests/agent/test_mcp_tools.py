"""llm.agent with the tools of an MCP server (tests/fakes/mcp_server.py, written with the official
SDK) over stdio and over streamable HTTP; the model is the scripted OpenAI-compatible server."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub import approvals
from hub.flow.loader import load_text
from hub.llm.fake import FakeOpenAI, Reply
from hub.testing import result_of
from tests.agent.agent_tools import calls
from tests.agent.test_agent import engine_for, tool_results

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

FLOW = """
id: desk
namespace: test
inputs: [{id: request, type: string}]
tasks:
  - id: assistant
    type: llm.agent
    model: fast
    instructions: You are the support desk's assistant.
    input: "{{ inputs.request }}"
    approval: {approvers: [lead@acme.com]}
    tools:
      - mcp: SERVER
        allow: [find_ticket, close_ticket]
        requires_approval: APPROVE
outputs:
  answer: "{{ outputs.assistant.answer }}"
"""

SCRIPT = [
    Reply(tool_calls=[{"name": "find_ticket", "arguments": {"customer": "Ada"}, "id": "m1"}]),
    Reply(tool_calls=[{"name": "close_ticket", "arguments": {"ticket": "T-42", "resolution": "refunded"},
                       "id": "m2"}]),
    Reply("Closed Ada's ticket T-42."),
]


@pytest.fixture
def fake() -> Iterator[Any]:
    server = FakeOpenAI()
    server.responder = lambda request: SCRIPT[tool_results(request)]
    with server.serve() as api_base:
        server.api_base = api_base  # type: ignore[attr-defined]
        yield server


def stdio_server(log: Path) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server"], "cwd": str(ROOT),
            "env": {"PYTHONPATH": str(ROOT), "MCP_TOOL_LOG": str(log)}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def http_server(log: Path) -> Iterator[str]:
    """The fake MCP server over streamable HTTP, in its own process; yields its /mcp URL."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MCP_TOOL_LOG": str(log)}
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.mcp_server", "--http", str(port)], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            assert proc.poll() is None, "the MCP server did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.wait(10)


def flow_with(server: dict[str, Any], approve: Any = False) -> Any:
    return load_text(FLOW.replace("SERVER", json.dumps(server)).replace("APPROVE", json.dumps(approve)))


async def test_an_agent_calls_the_tools_of_an_mcp_server_over_stdio(store, tmp_path, fake):
    log = tmp_path / "mcp.jsonl"
    engine = engine_for(store, tmp_path / "home", fake)
    execution = await engine.execute(flow_with(stdio_server(log)), {"request": "Ada got a refund; close her ticket"})
    assert execution["state"] == "SUCCESS", execution["error"]
    assert execution["outputs"] == {"answer": "Closed Ada's ticket T-42."}
    # the model was offered the allowed tools with the server's schemas, and not the others
    offered = {t["function"]["name"]: t["function"] for t in fake.requests[0]["tools"]}
    assert sorted(offered) == ["close_ticket", "find_ticket"]
    assert offered["find_ticket"]["parameters"]["required"] == ["customer"]
    assert offered["find_ticket"]["description"] == "Find the open ticket of a customer."
    logged = calls(str(log))
    assert [(c["tool"], c["arguments"]) for c in logged] == [
        ("find_ticket", {"customer": "Ada"}), ("close_ticket", {"ticket": "T-42", "resolution": "refunded"})]
    # the call carries its step's idempotency key in _meta, for a server that dedupes
    assert logged[0]["meta"]["dev.hub/idempotency-key"] == f"{execution['id']}:assistant.tools[1]"
    output = result_of(engine, execution["id"]).step("assistant")["output"]
    first, second = output["tool_calls"]
    assert first["result"]["structured"] == {"ticket": "T-42", "customer": "Ada", "status": "open"}
    assert second["result"]["text"] == "closed T-42: refunded"
    rows = {(r["path"], r["task_type"]): r["state"] for r in store.step_runs(execution["id"])}
    assert rows[("assistant.mcp[0]", "mcp.tools")] == "SUCCESS"
    assert rows[("assistant.tools[1]", "mcp.call")] == rows[("assistant.tools[2]", "mcp.call")] == "SUCCESS"


async def test_mcp_over_http_with_an_approval_gate_and_an_edited_argument(store, tmp_path, fake):
    log = tmp_path / "mcp.jsonl"
    with http_server(log) as url:
        engine = engine_for(store, tmp_path / "home", fake)
        service = approvals.install(engine)
        flow = flow_with({"url": url, "headers": {"X-Desk": "hub"}}, approve=["close_ticket"])
        execution = await engine.execute(flow, {"request": "close Ada's ticket"})
        assert execution["state"] == "PAUSED", execution["error"]
        assert [c["tool"] for c in calls(str(log))] == ["find_ticket"]  # not gated: ran; the close waits
        [gate] = service.gates()
        assert gate["path"] == "assistant.tools[2].approval"
        assert {k: v["default"] for k, v in gate["form"].items()} == {"ticket": "T-42", "resolution": "refunded"}
        decided = service.decide(gate["id"], ["lead@acme.com"], "api", "approve", form={"resolution": "credited"})
        await service.after_decision(decided.gate)
        await engine.queue.drain(include_timers=False)  # type: ignore[attr-defined]
        done = result_of(engine, execution["id"])
    assert done.state == "SUCCESS", done.error
    assert [c["tool"] for c in calls(str(log))] == ["find_ticket", "close_ticket"]  # each once, over a resume
    assert calls(str(log))[1]["arguments"] == {"ticket": "T-42", "resolution": "credited"}
    # the listing was committed once: the resumed agent offered the model the same tools
    assert [r["state"] for r in store.step_runs(execution["id"]) if r["path"] == "assistant.mcp[0]"] == ["SUCCESS"]
    assert sorted(tool_results(r) for r in fake.requests) == [0, 1, 2]


async def test_an_mcp_tool_error_is_the_models_tool_result(store, tmp_path, fake):
    log = tmp_path / "mcp.jsonl"
    fake.responder = lambda request: (
        Reply(tool_calls=[{"name": "desk_explode", "arguments": {"reason": "test"}, "id": "x"}])
        if tool_results(request) == 0 else Reply("The desk is down."))
    flow = FLOW.replace("allow: [find_ticket, close_ticket]", "prefix: desk")
    engine = engine_for(store, tmp_path / "home", fake)
    execution = await engine.execute(load_text(flow.replace("SERVER", json.dumps(stdio_server(log)))
                                               .replace("APPROVE", "false")), {"request": "x"})
    assert execution["state"] == "SUCCESS", execution["error"]
    assert sorted(t["function"]["name"] for t in fake.requests[0]["tools"]) == [
        "desk_close_ticket", "desk_explode", "desk_find_ticket"]
    error = json.loads(fake.requests[1]["messages"][-1]["content"])["error"]
    assert "the desk is on fire: test" in error
    assert calls(str(log)) == [{"tool": "explode", "arguments": {"reason": "test"}}]  # not retried


async def test_an_unreachable_mcp_server_fails_the_step_saying_where(store, tmp_path, fake):
    engine = engine_for(store, tmp_path / "home", fake)
    server = {"url": f"http://127.0.0.1:{free_port()}/mcp", "timeout": 5}
    execution = await engine.execute(flow_with(server), {"request": "x"})
    assert execution["state"] == "FAILED"
    error = result_of(engine, execution["id"]).step("assistant")["error"]
    assert "cannot connect to the MCP server http://127.0.0.1:" in error["message"]
    assert fake.requests == []  # the model was not asked without its tools


def test_a_tool_is_a_task_a_flow_or_an_mcp_server():
    from hub.errors import FlowError

    bad = FLOW.replace("SERVER", '{"url": "http://x/mcp"}').replace("APPROVE", "false").replace(
        "allow: [find_ticket, close_ticket]", "task: python")
    with pytest.raises(FlowError, match="a tool is one of: task: <kind>, flow: <namespace.id>, mcp:"):
        load_text(bad)
