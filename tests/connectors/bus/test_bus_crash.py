"""A ``hub serve`` process consuming 1,000 messages from each bus is killed with SIGKILL
mid-stream and started again: every message still has exactly one execution (none lost, none
doubled), for each bus."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from hub.store.tables import EXECUTIONS
from tests.connectors.bus.brokers import BROKERS, Broker
from tests.connectors.bus.conftest import BUSES, flow_text

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hub:
    """``hub serve`` on a SQLite file with its queue on Redis and no worker: it consumes and
    creates the executions, which wait queued (what is under test is the trigger, and running
    4,000 executions would only slow the test down)."""

    def __init__(self, tmp: Path, redis_url: str):
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'hub.db'}"
        self.redis_url = redis_url
        self.queue = f"hubtest:{uuid.uuid4().hex[:10]}"
        self.env = {**os.environ, "HUB_HOME": str(tmp / "home"), "HUB_DATABASE_URL": self.url,
                    "HUB_REDIS_URL": redis_url, "HUB_QUEUE_NAME": self.queue, "PYTHONPATH": str(ROOT)}
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def start(self) -> None:
        self.runs += 1
        log = open(self.tmp / f"serve{self.runs}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "serve", "--port", str(free_port()), "--flows", str(self.tmp / "flows"),
             "--log-level", "warning"], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join((self.tmp / f"serve{i}.log").read_text(errors="replace") for i in range(1, self.runs + 1))

    def forget_queue(self) -> None:
        """Remove the queue and the jobs of the executions from Redis."""
        import redis
        from arq.constants import job_key_prefix

        client = redis.Redis.from_url(self.redis_url)
        db = create_engine(self.url)
        try:
            with db.connect() as conn:
                ids = [row[0] for row in conn.execute(select(EXECUTIONS.c.id))]
            for start in range(0, len(ids), 500):
                client.delete(*(job_key_prefix + i for i in ids[start:start + 500]))
            client.delete(self.queue, self.queue + ":wake", self.queue + ":scheduler-leader")
        finally:
            client.close()
            db.dispose()

    def inputs(self) -> dict[str, list[int]]:
        """The ``n`` input of every execution, per bus (flow ``orders_<bus>``)."""
        db = create_engine(self.url)
        out: dict[str, list[int]] = {}
        try:
            with db.connect() as conn:
                for flow_id, inputs in conn.execute(select(EXECUTIONS.c.flow_id, EXECUTIONS.c.inputs)):
                    out.setdefault(flow_id.removeprefix("orders_"), []).append(inputs["n"])
        finally:
            db.dispose()
        return out

    def counts(self) -> dict[str, int]:
        """Executions per bus."""
        if not (self.tmp / "hub.db").exists():
            return {}
        db = create_engine(self.url)
        query = select(EXECUTIONS.c.flow_id, func.count()).group_by(EXECUTIONS.c.flow_id)
        try:
            with db.connect() as conn:
                return {flow_id.removeprefix("orders_"): int(n) for flow_id, n in conn.execute(query)}
        except Exception:  # the schema is not there yet
            return {}
        finally:
            db.dispose()

    def wait(self, done: Callable[[dict[str, int]], bool], timeout: float, message: str) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.counts()
            if done(seen):
                return seen
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("hub serve exited\n" + self.logs())
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {message} (saw {self.counts()})\n" + self.logs()[-5000:])


def available() -> list[Broker]:
    """An adapter for each bus whose broker answers (the others are reported, not tested here)."""
    brokers = []
    for bus in BUSES:
        try:
            brokers.append(BROKERS[bus]())
        except pytest.skip.Exception as skipped:
            print(f"not tested: {skipped}")
    if not brokers:
        pytest.skip("no broker answers; start them with scripts/services.sh")
    return brokers


@pytest.mark.timeout(300)
async def test_sigkill_mid_stream_loses_and_doubles_nothing(tmp_path: Path, redis_url: str) -> None:
    """One flow per bus in one hub process (two start-ups instead of eight): 1,000 messages each,
    the process killed mid-stream (once every flow has started some, or one is half-way), then
    started again: every message has exactly one execution."""
    brokers = available()
    (tmp_path / "flows").mkdir()
    for broker in brokers:
        flow = flow_text(broker.trigger(), flow_id=f"orders_{broker.bus}")
        (tmp_path / "flows" / f"{broker.bus}.yaml").write_text(flow)
        await broker.prepare()
        await broker.produce([json.dumps({"n": i}).encode() for i in range(1000)])
    hub = Hub(tmp_path, redis_url)
    try:
        hub.start()
        # Killed once every trigger has started some executions, or as soon as one bus is nearly
        # through its stream (a broker that starts slowly must not let the others finish first).
        seen = hub.wait(lambda counts: all(counts.get(b.bus, 0) >= 50 for b in brokers)
                        or max(counts.values(), default=0) >= 500, timeout=180,
                        message="the triggers to start executions")
        hub.kill()
        assert any(0 < n < 1000 for n in seen.values()), f"no stream was mid-way at the kill: {seen}"
        hub.start()
        hub.wait(lambda counts: all(counts.get(b.bus, 0) >= 1000 for b in brokers), timeout=180,
                 message="1000 executions per bus")
        inputs = hub.inputs()
    finally:
        hub.kill()
        hub.forget_queue()
        for broker in brokers:
            await broker.close()
    for broker in brokers:
        assert sorted(inputs[broker.bus]) == list(range(1000)), (broker.bus, seen, hub.logs()[-3000:])
