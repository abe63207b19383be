"""Helpers to run flows in tests and notebooks: a real engine on a real store, no mocks.

    result = run_flow('''
    id: demo
    tasks:
      - {id: hi, type: set, values: {x: 1}}
    outputs: {x: "{{ outputs.hi.x }}"}
    ''')
    assert result.state == "SUCCESS" and result.outputs == {"x": 1}
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.engine.clock import Clock
from hub.engine.runner import Engine
from hub.flow.loader import flow_files, load_file, load_text
from hub.flow.models import Flow
from hub.settings import HubSettings
from hub.store.store import Store


@dataclass
class Result:
    """An execution after its run, with its step runs and handy accessors."""

    execution: dict[str, Any]
    steps: list[dict[str, Any]]
    engine: Engine

    @property
    def id(self) -> str:
        return str(self.execution["id"])

    @property
    def state(self) -> str:
        return str(self.execution["state"])

    @property
    def outputs(self) -> Any:
        return self.execution["outputs"]

    @property
    def error(self) -> Any:
        return self.execution["error"]

    def runs(self, path: str) -> list[dict[str, Any]]:
        """Every attempt of one step, oldest first."""
        return [s for s in self.steps if s["path"] == path]

    def step(self, path: str) -> dict[str, Any]:
        """The newest attempt of one step."""
        found = self.runs(path)
        if not found:
            raise KeyError(f"no step run at {path!r}; ran: {sorted({s['path'] for s in self.steps})}")
        return found[-1]

    def output(self, path: str) -> Any:
        return self.engine.store.load_output(self.step(path))


def make_engine(
    store: Store | None = None,
    *,
    home: str | Path | None = None,
    clock: Clock | None = None,
    flows_dir: str | Path | None = None,
    **settings: Any,
) -> Engine:
    """An engine on ``store`` (default: a SQLite file in a temporary ``home``); ``settings`` are
    :class:`HubSettings` fields (``inline_output_limit`` applies to a given store too)."""
    home = Path(home) if home else Path(tempfile.mkdtemp(prefix="hub-test-"))
    config = HubSettings(home=home, **settings)
    if store is None:
        store = Store.from_settings(config)
    elif "inline_output_limit" in settings:
        store.inline_limit = config.inline_output_limit
    engine = Engine(store, config, clock=clock)
    if flows_dir:
        for path in flow_files(flows_dir):
            engine.deploy(load_file(path))
    return engine


async def run_flow_async(
    flow: str | Flow,
    inputs: dict[str, Any] | None = None,
    *,
    engine: Engine | None = None,
    store: Store | None = None,
    drain: bool = True,
    **kwargs: Any,
) -> Result:
    """Run a flow (YAML text or a :class:`Flow`) to its end in this process."""
    engine = engine or make_engine(store, **kwargs)
    parsed = load_text(flow) if isinstance(flow, str) else flow
    execution = await engine.execute(parsed, inputs)
    if drain:
        await engine.queue.drain()  # type: ignore[attr-defined]
    return result_of(engine, execution["id"])


def run_flow(flow: str | Flow, inputs: dict[str, Any] | None = None, **kwargs: Any) -> Result:
    """Synchronous :func:`run_flow_async` (for plain test functions)."""
    return asyncio.run(run_flow_async(flow, inputs, **kwargs))


@contextmanager
def serve_app(app: Any) -> Iterator[str]:
    """Serve an ASGI app (a provider fake) on a free 127.0.0.1 port in a background thread;
    yields its base URL and stops when the block ends."""
    import socket
    import threading
    import time

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the loopback server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def result_of(engine: Engine, execution_id: str) -> Result:
    return Result(engine.store.get_execution(execution_id), engine.store.step_runs(execution_id), engine)
