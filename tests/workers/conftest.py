"""Fixtures for worker tests: a fresh PostgreSQL schema, a unique arq queue on the real Redis,
and ``hub worker`` subprocesses that are always killed at the end."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import (
    POSTGRES_URL,  # noqa: E402
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def queue_name(redis_url: str) -> Iterator[str]:
    import redis

    name = f"hubtest:{uuid.uuid4().hex[:10]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    client.delete(name, name + ":wake", name + ":health-check")
    client.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose connections use a fresh schema (dropped afterwards)."""
    if not POSTGRES_URL:
        pytest.skip("HUB_TEST_POSTGRES_URL is not set")
    from sqlalchemy import create_engine, text

    schema = f"w_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in POSTGRES_URL else "?"
    url = f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    from hub.store.store import Store

    Store.open(url).close()  # migrate once, before workers race for it
    try:
        yield url
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              f"WHERE pid <> pg_backend_pid() AND query ILIKE '%{schema}%'"))
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


class Workers:
    """``hub worker`` subprocesses on one queue; :meth:`stop` kills every one that is left."""

    def __init__(self, env: dict[str, str], tmp: Path):
        self.env = env
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        index = len(self.procs)
        log = open(self.tmp / f"worker{index}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--sweep-interval", "0.3", "--log-level", "info", *args],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )
        self.procs.append(proc)
        return proc

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every spawned worker polls its queue (its start-up line is in its log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(" on queue " in (self.tmp / f"worker{i}.log").read_text(errors="replace")
                   for i in range(len(self.procs))):
                return
            time.sleep(0.05)
        raise AssertionError("the workers did not start\n" + self.logs())

    def by_pid(self, pid: int) -> subprocess.Popen[bytes]:
        return next(p for p in self.procs if p.pid == pid)

    def logs(self) -> str:
        return "\n".join(
            f"--- worker{i} ---\n" + (self.tmp / f"worker{i}.log").read_text(errors="replace")
            for i in range(len(self.procs))
        )

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)


@pytest.fixture
def workers(pg_url: str, redis_url: str, queue_name: str, tmp_path: Path) -> Iterator[Workers]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": pg_url,
        "HUB_REDIS_URL": redis_url,
        "HUB_QUEUE_NAME": queue_name,
        "HUB_HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT),
    }
    pool = Workers(env, tmp_path)
    try:
        yield pool
    finally:
        pool.stop()


def wait_for(check: Callable[[], object], timeout: float = 20.0, interval: float = 0.05,
             message: str = "condition") -> object:
    """Poll ``check`` until it returns something truthy (a deadline, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {message}")
