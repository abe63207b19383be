"""A real hub server on loopback for the browser tests and the screenshot script: SQLite, tracing
into the database, the LLM client on the shipped fake OpenAI-compatible server, API keys, a few
flows, an approval waiting, an eval run of two prompt versions, a candidate-vs-production run and
an online eval with scores.

    with demo_hub(tmp_path) as hub:
        hub.url, hub.keys["admin"], hub.engine
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from hub.engine.runner import Engine
from hub.llm.fake import FakeOpenAI
from hub.prompts.registry import use_prompts_dir
from hub.settings import HubSettings
from hub.store.api_store import ApiStore
from hub.store.store import Store
from tests.console.conftest import GREET, REFUND
from tests.console.llm import TRIAGE_FLOW, llm_client, project, quality_seed, two_version_run

TOUR = """\
id: tour
namespace: demo
description: Fetch, retry a flaky call, branch, and sum up.
inputs:
  - {id: name, type: string, required: true}
  - {id: times, type: int, default: 2}
tasks:
  - {id: fetch, type: python, function: "tests.helpers:slow", kwargs: {seconds: 1.2}}
  - id: call
    type: python
    function: "tests.helpers:flaky"
    kwargs: {name: "{{ execution.id }}", failures: 1}
    retry: {type: constant, max_attempts: 3, interval: 0.4s}
  - id: choose
    type: if
    condition: "{{ inputs.times > 1 }}"
    then:
      - {id: many, type: log, message: "{{ inputs.name }} x{{ inputs.times }}"}
    else:
      - {id: once, type: log, message: "{{ inputs.name }} once"}
outputs: {greeting: "hello {{ inputs.name }}"}
"""

SCOPES = {"admin": ["admin"], "ana": ["approve"], "reader": ["read"]}


@dataclass
class DemoHub:
    url: str
    engine: Engine
    keys: dict[str, str]
    eval_run: str
    extra: dict[str, Any] = field(default_factory=dict)

    def api(self, method: str, path: str, key: str = "admin", **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def wait(self, execution_id: str, states: set[str], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            row = self.engine.store.get_execution(execution_id)
            if row["state"] in states or time.monotonic() > deadline:
                return row
            time.sleep(0.05)


def _serve(app: Any) -> tuple[str, Any, threading.Thread]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False,
                                           loop="asyncio", timeout_graceful_shutdown=1))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the hub server did not start")
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread


@contextmanager
def demo_hub(root: Path, *, seed: bool = True) -> Iterator[DemoHub]:
    """The server, with keys ``admin``, ``ana`` (approve) and ``reader`` and, with ``seed``, the
    flows greet, tour, refund (one approval waiting) and triage, and one eval run."""
    from hub.api.app import create_app
    from hub.telemetry.middleware import install
    from hub.telemetry.setup import build_tracer_provider

    prompts, evals = project(root)
    saved_env = {name: os.environ.get(name) for name in ("HUB_EVALS_DIR", "HUB_PROMPTS_DIR")}
    # the server's thread reads these (a context variable set here would not reach it)
    os.environ.update(HUB_EVALS_DIR=str(evals), HUB_PROMPTS_DIR=str(prompts))
    fake = FakeOpenAI()
    with fake.serve() as api_base, use_prompts_dir(prompts):
        store = Store.open(f"sqlite:///{root / 'hub.db'}")
        settings = HubSettings(home=root / "home", prompts_dir=prompts)
        llm = llm_client(fake, api_base, root)
        engine = Engine(store, settings, services={"llm": llm})
        provider = build_tracer_provider([], store=store, simple=True)
        install(engine, provider)
        keys = {name: ApiStore(store).create_key(name, scopes)[1] for name, scopes in SCOPES.items()}
        eval_run = ""
        if seed:  # in a thread of its own: the caller may run an event loop (Playwright's sync API does)
            with ThreadPoolExecutor(1) as pool:
                eval_run = pool.submit(asyncio.run, two_version_run(store, llm, prompts, evals, settings)).result()
                compared = pool.submit(asyncio.run, quality_seed(store, llm, evals, settings)).result()
        url, server, thread = _serve(create_app(engine))
        hub = DemoHub(url, engine, keys, eval_run)
        if seed:
            hub.extra["comparison"] = compared
        try:
            if seed:
                for source in (GREET, TOUR, REFUND, TRIAGE_FLOW):
                    response = hub.api("POST", "/v1/flows", content=source,
                                       headers={"Content-Type": "application/x-yaml"})
                    assert response.status_code in (200, 201), response.text
                started = hub.api("POST", "/v1/flows/support/refund/executions", json={"inputs": {"amount": 42.5}})
                hub.extra["refund"] = started.json()["id"]
                hub.wait(hub.extra["refund"], {"PAUSED"})
            yield hub
        finally:
            server.should_exit = True
            thread.join(10)
            provider.shutdown()
            store.close()
            for name, value in saved_env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
