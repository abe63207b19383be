"""The hub's own time in an agent's tool calls and in streamed tokens (issue 15), excluding the model
and the tool.

    python bench/agent_bench.py [--runs 30] [--tools 10] [--words 400] [--mcp]

The model is the OpenAI-compatible stub (``hub.llm.fake.FakeOpenAI``) in its own process on
loopback, so its work is not this process's CPU; the store is a SQLite file (WAL), every step
run recorded, the engine in this process.

- **per tool call**: an ``llm.agent`` step whose model calls K tools in one turn and then answers,
  against one whose model calls 1 tool: the same two model turns, K - 1 more tool calls. The
  tool is the ``set`` task kind (no I/O). ``(cpu(K) - cpu(1)) / (K - 1)`` is the hub's CPU per
  tool call: the durable child step (its start and end rows), validation, placing the arguments,
  the ``execute_tool`` span, the tool result in the transcript and the larger next request.
- **per MCP tool call** (``--mcp``): the same with the tools of an MCP server over stdio
  (tests/fakes/mcp_server.py in its own process): the hub's side of the SDK's JSON-RPC included,
  and then the SDK's client alone (``session.call_tool`` in a loop) for comparison.
- **per streamed token**: an ``llm.chat`` step answering N words with ``stream: true`` against the
  same answer without streaming, a listener on the engine's events as ``hub run`` has;
  ``(cpu(stream) - cpu(plain)) / N`` (the stub sends a chunk per word).

CPU time (``time.process_time``) of this process is the figure: wall time on a shared machine
measures the neighbours. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUB = """
import re, uvicorn
from hub.llm.fake import FakeOpenAI, Reply

def respond(request):
    model = request.get("model", "")
    if model.startswith("text-"):
        return Reply(" ".join(f"w{i}" for i in range(int(model[5:]))), completion_tokens=int(model[5:]))
    kind, count = model.split("-")[:2]
    if any(m["role"] == "tool" for m in request["messages"]):
        return Reply("done")
    name = "set_note" if kind == "tools" else "find_ticket"
    arguments = {"note": "n"} if kind == "tools" else {"customer": "Ada"}
    return Reply(tool_calls=[{"name": name, "arguments": arguments, "id": f"c{i}"} for i in range(int(count))])

fake = FakeOpenAI()
fake.responder = respond
uvicorn.run(fake, host="127.0.0.1", port={port}, log_level="warning", access_log=False, lifespan="off")
"""

AGENT = """
id: bench_agent
namespace: bench
tasks:
  - id: assistant
    type: llm.agent
    model: MODEL
    instructions: You take notes.
    input: take a note
    max_turns: 3
    tools: [TOOL]
"""
SET_TOOL = {"name": "set_note", "task": "set", "arguments_into": "values",
            "parameters": {"type": "object", "properties": {"note": {"type": "string"}}}}

CHAT = """
id: bench_chat
namespace: bench
tasks:
  - {id: answer, type: llm.chat, model: MODEL, messages: [{role: user, content: talk}], stream: STREAM}
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the model stub did not start within 30 s")


async def _cpu_per_run(engine: Any, flow: Any, runs: int) -> float:
    """CPU ms of one execution of ``flow`` (after warming up), checked to succeed."""
    for _ in range(3):
        row = await engine.execute(flow, {})
        assert row["state"] == "SUCCESS", row["error"]
    start = time.process_time()
    for _ in range(runs):
        row = await engine.execute(flow, {})
        assert row["state"] == "SUCCESS", row["error"]
    return (time.process_time() - start) / runs * 1000


async def _sdk_per_call(server: dict[str, Any], calls: int) -> float:
    """CPU ms of one ``ClientSession.call_tool`` on an open stdio session: the SDK's share."""
    from hub.mcp.client import McpServer, connect

    async with connect(McpServer.model_validate(server)) as session:
        for _ in range(20):
            await session.call_tool("find_ticket", {"customer": "Ada"})
        start = time.process_time()
        for _ in range(calls):
            await session.call_tool("find_ticket", {"customer": "Ada"})
        return (time.process_time() - start) / calls * 1000


def _models(base: str, names: list[str]) -> dict[str, Any]:
    spec = {"api_base": base, "api_key": "bench", "input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}
    return {"models": {n: {"model": f"openai/{n}", **spec} for n in names}}


async def run(base: str, args: argparse.Namespace) -> None:
    from hub.flow.loader import load_text
    from hub.llm.client import LLMClient
    from hub.llm.settings import LLMSettings, ModelsConfig
    from hub.store.store import Store
    from hub.testing import make_engine

    k, n = args.tools, args.words
    home = Path(os.environ["HUB_HOME"])
    store = Store.open(f"sqlite:///{home / 'hub.db'}")
    engine = make_engine(store, home=home)
    models = ModelsConfig.model_validate(json.loads(Path(os.environ["HUB_LLM_MODELS_FILE"]).read_text()))
    engine.services["llm"] = LLMClient(LLMSettings(timeout=30, num_retries=0), models)
    engine.listeners.append(lambda event: None)  # hub run's progress listens to every event

    def agent(model: str, tool: dict[str, Any]) -> Any:
        return load_text(AGENT.replace("MODEL", model).replace("TOOL", json.dumps(tool)))

    many = await _cpu_per_run(engine, agent(f"tools-{k}", SET_TOOL), args.runs)
    one = await _cpu_per_run(engine, agent("tools-1", SET_TOOL), args.runs)
    print(f"llm.agent, 2 turns, 1 tool call:     cpu {one:7.2f} ms/run")
    print(f"llm.agent, 2 turns, {k} tool calls:    cpu {many:7.2f} ms/run")
    print(f"  hub CPU per tool call (set task):  {(many - one) / (k - 1):6.3f} ms")
    if args.mcp:
        server = {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server"], "cwd": str(ROOT),
                  "env": {"PYTHONPATH": str(ROOT)}}
        tool = {"mcp": server, "allow": ["find_ticket"]}
        many = await _cpu_per_run(engine, agent(f"mcp-{k}", tool), args.runs)
        one = await _cpu_per_run(engine, agent("mcp-1", tool), args.runs)
        print(f"llm.agent over MCP stdio, 1 call:    cpu {one:7.2f} ms/run (server start and listing included)")
        print(f"llm.agent over MCP stdio, {k} calls:   cpu {many:7.2f} ms/run")
        print(f"  hub CPU per MCP tool call:         {(many - one) / (k - 1):6.3f} ms")
        sdk = await _sdk_per_call(server, args.runs * k)
        print(f"  of which the SDK's client alone:   {sdk:6.3f} ms (session.call_tool in a loop, no hub)")
    plain = await _cpu_per_run(engine, load_text(CHAT.replace("MODEL", f"text-{n}").replace("STREAM", "false")),
                               args.runs)
    streamed = await _cpu_per_run(engine, load_text(CHAT.replace("MODEL", f"text-{n}").replace("STREAM", "true")),
                                  args.runs)
    print(f"llm.chat, {n} words, not streamed:  cpu {plain:7.2f} ms/run")
    print(f"llm.chat, {n} words, streamed:      cpu {streamed:7.2f} ms/run")
    print(f"  hub CPU per streamed token:        {(streamed - plain) / n * 1000:6.1f} µs")
    await engine.services["llm"].aclose()
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="Executions measured per case.")
    parser.add_argument("--tools", type=int, default=10, help="Tool calls in the many-calls case (K).")
    parser.add_argument("--words", type=int, default=400, help="Words (chunks) of the streamed answer (N).")
    parser.add_argument("--mcp", action="store_true", help="Also measure MCP tool calls (stdio server).")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("HUB_TRACING", "off")
    port = _port()
    home = Path(tempfile.mkdtemp(prefix="agent-bench-"))
    names = [f"tools-{args.tools}", "tools-1", f"mcp-{args.tools}", "mcp-1", f"text-{args.words}"]
    (home / "models.json").write_text(json.dumps(_models(f"http://127.0.0.1:{port}/v1", names)))
    os.environ.update(HUB_HOME=str(home), HUB_LLM_MODELS_FILE=str(home / "models.json"))  # JSON is YAML
    stub = subprocess.Popen([sys.executable, "-c", STUB.replace("{port}", str(port))], cwd=ROOT,
                            stderr=subprocess.DEVNULL)
    try:
        _wait(port)
        print(f"{args.runs} runs per case, {os.cpu_count()} CPUs (a shared machine: CPU time, not wall time)")
        asyncio.run(run(f"http://127.0.0.1:{port}/v1", args))
    finally:
        stub.terminate()
        stub.wait(10)


if __name__ == "__main__":
    main()
