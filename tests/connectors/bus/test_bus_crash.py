"""A ``hub serve`` process consuming 1,000 messages is killed with SIGKILL mid-stream and started
again: every message still has exactly one execution (none lost, none doubled), for each bus."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from hub.store.tables import Execution
from tests.connectors.bus.brokers import Broker
from tests.connectors.bus.conftest import BUSES, flow_text

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[3]
EXECUTIONS = Execution.__table__  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Hub:
    """``hub serve`` on a SQLite file (the embedded deployment: it consumes and runs)."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.url = f"sqlite:///{tmp / 'hub.db'}"
        self.env = {**os.environ, "HUB_HOME": str(tmp / "home"), "HUB_DATABASE_URL": self.url,
                    "PYTHONPATH": str(ROOT)}
        self.env.pop("HUB_REDIS_URL", None)
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

    def inputs(self) -> list[int]:
        db = create_engine(self.url)
        try:
            with db.connect() as conn:
                return [row[0]["n"] for row in conn.execute(select(EXECUTIONS.c.inputs))]
        finally:
            db.dispose()

    def count(self) -> int:
        if not (self.tmp / "hub.db").exists():
            return 0
        db = create_engine(self.url)
        try:
            with db.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(EXECUTIONS)).scalar_one())
        except Exception:  # the schema is not there yet
            return 0
        finally:
            db.dispose()

    def wait(self, at_least: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.count()
            if seen >= at_least:
                return seen
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError("hub serve exited\n" + self.logs())
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {at_least} executions (saw {self.count()})\n" + self.logs())


@pytest.mark.parametrize("broker", BUSES, indirect=True)
async def test_sigkill_mid_stream_loses_and_doubles_nothing(broker: Broker, tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "orders.yaml").write_text(flow_text(broker.trigger()))
    await broker.prepare()
    await broker.produce([json.dumps({"n": i}).encode() for i in range(1000)])
    hub = Hub(tmp_path)
    try:
        hub.start()
        seen = hub.wait(150, timeout=120)
        hub.kill()
        assert seen < 1000, "the stream was consumed before the kill; the test needs the kill mid-stream"
        hub.start()
        hub.wait(1000, timeout=120)
        inputs = hub.inputs()
    finally:
        hub.kill()
    assert len(inputs) == 1000, hub.logs()
    assert sorted(inputs) == list(range(1000))
