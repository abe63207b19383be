"""``hub worker`` processes on real Redis and PostgreSQL: load sharing, a worker killed with
SIGKILL mid-execution, flow concurrency limits held across processes."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from hub.engine.runner import Engine
from hub.flow.loader import load_text
from hub.service.runtime import build_engine
from hub.settings import HubSettings
from tests.workers.conftest import Workers, wait_for
from tests.workers.steps import lines

pytestmark = pytest.mark.postgres


def engine_for(pg_url: str, redis_url: str, queue_name: str, tmp_path: Path) -> Engine:
    settings = HubSettings(home=tmp_path / "client", database_url=pg_url, redis_url=redis_url)
    return build_engine(settings, queue=queue_name)


def start(engine: Engine, flow: str, count: int = 1, inputs: dict[str, Any] | None = None) -> list[str]:
    async def go() -> list[str]:
        parsed = load_text(flow)
        ids = [await engine.start(parsed, inputs) for _ in range(count)]
        await close_engine_queue(engine)
        return ids

    return asyncio.run(go())


async def close_engine_queue(engine: Engine) -> None:
    await engine.queue.close()  # type: ignore[attr-defined]  # each asyncio.run needs a new pool


def states(engine: Engine, ids: list[str]) -> list[str]:
    return [engine.store.get_execution(i)["state"] for i in ids]


def all_ended(engine: Engine, ids: list[str]) -> bool:
    return all(s in ("SUCCESS", "FAILED", "WARNING", "KILLED", "CANCELLED") for s in states(engine, ids))


def test_two_workers_share_the_queue(workers: Workers, pg_url: str, redis_url: str, queue_name: str,
                                     tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    flow = f"""
id: share
namespace: wt
tasks:
  - {{id: one, type: python, function: "tests.workers.steps:record", kwargs: {{log: "{log}", name: one, sleep: 0.3}}}}
  - {{id: two, type: set, values: {{done: true}}}}
outputs: {{done: "{{{{ outputs.two.done }}}}"}}
"""
    workers.spawn("--concurrency", "2")
    workers.spawn("--concurrency", "2")
    workers.wait_ready()  # both polling: neither can take every job before the other starts
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        ids = start(engine, flow, count=8)
        wait_for(lambda: all_ended(engine, ids), message="8 executions to end")
        assert states(engine, ids) == ["SUCCESS"] * 8, workers.logs()
        assert [engine.store.get_execution(i)["outputs"] for i in ids] == [{"done": True}] * 8
        pids = {line["pid"] for line in lines(log)}
        assert len(lines(log)) == 8
        assert pids == {p.pid for p in workers.procs}  # 2 slots each, 8 slow executions: both work
    finally:
        engine.store.close()


def test_killed_worker_execution_is_finished_by_another(workers: Workers, pg_url: str, redis_url: str,
                                                        queue_name: str, tmp_path: Path) -> None:
    log = tmp_path / "runs.jsonl"
    step = 'type: python, function: "tests.workers.steps:record"'
    flow = f"""
id: durable
namespace: wt
tasks:
  - {{id: first, {step}, kwargs: {{log: "{log}", name: first}}}}
  - {{id: slow, {step}, kwargs: {{log: "{log}", name: slow, sleep: 30}}}}
  - {{id: last, {step}, kwargs: {{log: "{log}", name: last}}}}
outputs:
  ran_on: "{{{{ outputs.last.pid }}}}"
"""
    workers.spawn()
    workers.spawn()
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        [execution_id] = start(engine, flow)
        wait_for(lambda: any(x["name"] == "slow" for x in lines(log)), message="the slow step to start")
        # its RUNNING row is written once it has run leaf.START_DELAY: kill after that, so it counts as an attempt
        wait_for(lambda: any(s["path"] == "slow" and s["state"] == "RUNNING" for s in engine.store.step_runs(execution_id)),
                 message="the slow step's RUNNING row")
        victim_pid = next(x["pid"] for x in lines(log) if x["name"] == "slow")
        victim = workers.by_pid(victim_pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)

        wait_for(lambda: all_ended(engine, [execution_id]), message="the execution to end elsewhere")
        execution = engine.store.get_execution(execution_id)
        assert execution["state"] == "SUCCESS", (execution, workers.logs())
        survivor = next(p.pid for p in workers.procs if p.pid != victim_pid)
        assert execution["outputs"] == {"ran_on": survivor}

        runs = [(x["name"], x["pid"], x["attempt"]) for x in lines(log)]
        # committed 'first' never ran again; the in-flight 'slow' ran again once, on the survivor
        assert runs == [
            ("first", victim_pid, 1), ("slow", victim_pid, 1), ("slow", survivor, 2), ("last", survivor, 1),
        ]
        steps = [(s["path"], s["state"], s["attempt"]) for s in engine.store.step_runs(execution_id)]
        assert steps == [
            ("first", "SUCCESS", 1), ("slow", "FAILED", 1), ("slow", "SUCCESS", 2), ("last", "SUCCESS", 1),
        ]
        interrupted = engine.store.step_runs(execution_id)[1]["error"]
        assert interrupted["type"] == "Interrupted"
    finally:
        engine.store.close()


@pytest.mark.parametrize("limit", [1, 2])
def test_concurrency_limit_holds_across_workers(workers: Workers, pg_url: str, redis_url: str,
                                                queue_name: str, tmp_path: Path, limit: int) -> None:
    counter = tmp_path / "counter.json"
    flow = f"""
id: limited
namespace: wt
concurrency: {{limit: {limit}, behavior: queue}}
tasks:
  - {{id: busy, type: python, function: "tests.workers.steps:occupy", kwargs: {{counter: "{counter}", seconds: 0.15}}}}
"""
    workers.spawn("--concurrency", "4")
    workers.spawn("--concurrency", "4")
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        ids = start(engine, flow, count=8)
        wait_for(lambda: all_ended(engine, ids), message="8 limited executions to end")
        assert states(engine, ids) == ["SUCCESS"] * 8, workers.logs()
        seen = json.loads(counter.read_text())
        assert seen == {"now": 0, "max": limit}
        pids = {engine.store.load_output(engine.store.latest_steps(i)["busy"])["pid"] for i in ids}
        assert pids <= {p.pid for p in workers.procs}
    finally:
        engine.store.close()


def test_fail_behavior_across_workers(workers: Workers, pg_url: str, redis_url: str, queue_name: str,
                                      tmp_path: Path) -> None:
    counter = tmp_path / "counter.json"
    flow = f"""
id: exclusive
namespace: wt
concurrency: {{limit: 1, behavior: fail}}
tasks:
  - {{id: busy, type: python, function: "tests.workers.steps:occupy", kwargs: {{counter: "{counter}", seconds: 1.0}}}}
"""
    workers.spawn()
    workers.spawn()
    engine = engine_for(pg_url, redis_url, queue_name, tmp_path)
    try:
        ids = start(engine, flow, count=4)
        wait_for(lambda: all_ended(engine, ids), message="4 executions to end")
        result = sorted(states(engine, ids))
        assert result.count("SUCCESS") >= 1 and set(result) <= {"SUCCESS", "FAILED"}
        assert json.loads(counter.read_text())["max"] == 1
        failed = [engine.store.get_execution(i) for i in ids if engine.store.get_execution(i)["state"] == "FAILED"]
        assert all(f["error"]["type"] == "ConcurrencyLimit" for f in failed)
    finally:
        engine.store.close()
