"""What one LLM call costs the caller's CPU, by client layer, against a provider that answers at once.

    python bench/llm_client_bench.py [--calls 300]

An OpenAI-compatible stub (``hub.llm.fake.FakeOpenAI``) runs in its own process on loopback; this
process calls it ``--calls`` times, one call at a time, through:

- httpx:             a plain POST of the chat-completions body (the floor);
- litellm:           ``litellm.acompletion`` with the model's prices (provider ``openai/``);
- litellm Router:    ``Router.acompletion`` (retries, timeout, no cooldowns), as hub 0.1 called it;
- hub, openai:       ``hub.llm.client.LLMClient.complete`` over the direct OpenAI-wire transport
                     (what an ``openai/...`` alias with an ``api_base`` uses);
- hub, litellm:      the same client over its litellm transport (every other provider).

It prints CPU time (``time.process_time``) and wall time per call. The difference between the rows
is what each layer adds on the caller's side; with a real provider the wall time is dominated by
the model. Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUB = """
import uvicorn
from hub.llm.fake import FakeOpenAI
uvicorn.run(FakeOpenAI(), host="127.0.0.1", port={port}, log_level="warning", access_log=False, lifespan="off")
"""
MESSAGES = [{"role": "user", "content": "Label this text: an invoice arrived"}]
PRICES = {"input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _measure(label: str, call: Callable[[], Awaitable[Any]], calls: int) -> None:
    for _ in range(20):  # warm up: connections, caches, lazy imports
        await call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await call()
    cpu_ms = (time.process_time() - cpu) / calls * 1000
    wall_ms = (time.perf_counter() - wall) / calls * 1000
    print(f"{label:18s} cpu {cpu_ms:6.2f} ms/call   wall {wall_ms:6.2f} ms/call")


async def run(base: str, calls: int) -> None:
    import httpx

    from hub.llm.client import LLMClient, litellm_module
    from hub.llm.settings import LLMSettings, ModelsConfig, ModelSpec

    litellm = litellm_module()
    router = litellm.Router(
        model_list=[{"model_name": "stub", "litellm_params": {"model": "openai/bench-stub", "api_base": base,
                                                              "api_key": "bench", **PRICES}}],
        num_retries=2, timeout=60, disable_cooldowns=True,
    )
    direct = ModelSpec(model="openai/bench-stub", api_base=base, api_key="bench", **PRICES)
    via_litellm = direct.model_copy(update={"transport": "litellm"})
    client = LLMClient(LLMSettings(), ModelsConfig(models={"stub": direct, "stub-litellm": via_litellm}))
    body = {"model": "bench-stub", "messages": MESSAGES}
    async with httpx.AsyncClient() as http:
        await _measure("httpx", lambda: http.post(base + "/chat/completions", json=body), calls)
    await _measure("litellm", lambda: litellm.acompletion(
        model="openai/bench-stub", api_base=base, api_key="bench", messages=MESSAGES, **PRICES), calls)
    await _measure("litellm Router", lambda: router.acompletion(model="stub", messages=MESSAGES), calls)
    await _measure("hub, openai", lambda: client.complete("stub", MESSAGES), calls)
    await _measure("hub, litellm", lambda: client.complete("stub-litellm", MESSAGES), calls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    port = _port()
    stub = subprocess.Popen([sys.executable, "-c", STUB.format(port=port)], cwd=ROOT, stderr=subprocess.DEVNULL)
    try:
        import httpx

        deadline = time.monotonic() + 30
        body = json.dumps({"model": "x", "messages": MESSAGES})
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=body, timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise SystemExit("the stub did not start within 30 s") from None
                time.sleep(0.1)
        print(f"{args.calls} calls each, one at a time, {os.cpu_count()} CPUs")
        asyncio.run(run(f"http://127.0.0.1:{port}/v1", args.calls))
    finally:
        stub.terminate()
        stub.wait(10)


if __name__ == "__main__":
    main()
