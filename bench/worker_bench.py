"""Scaled-out throughput and latency: PostgreSQL + Redis + one ``hub worker`` on loopback.

    python bench/worker_bench.py [--count 2000] [--rate 100] [--seconds 60] \
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/0]

A 2-step flow (two ``set`` steps). The load generator creates executions the way the API and
webhooks do (``Engine.start``: insert the execution row, enqueue an arq job) and one worker
subprocess runs them. Timestamps come from the execution rows (same host, same clock).

(a) throughput: ``--count`` executions submitted as fast as one client can; executions per
    second from the first created to the last ended.
(b) latency at a fixed offered rate (``--rate``/s for ``--count``/2 executions, below saturation):
    created -> ended p50 / p99, and created -> started (queue wait).

Bounded: stops after ``--seconds`` whatever happened. Uses a fresh PostgreSQL schema and a
unique queue, removed at the end. Nothing asserts; it prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.flow.loader import load_text  # noqa: E402
from hub.service.runtime import build_engine  # noqa: E402
from hub.settings import HubSettings  # noqa: E402

FLOW = """
id: two_steps
namespace: bench
inputs: [{id: n, type: int, default: 0}]
tasks:
  - {id: first, type: set, values: {v: "{{ inputs.n + 1 }}"}}
  - {id: second, type: set, values: {v: "{{ outputs.first.v * 2 }}"}}
outputs: {v: "{{ outputs.second.v }}"}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def submit(engine: Any, count: int, rate: float | None, deadline: float) -> list[str]:
    flow = load_text(FLOW)
    engine.deploy(flow)
    ids = []
    start = time.perf_counter()
    for i in range(count):
        if time.monotonic() > deadline:
            break
        if rate:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        ids.append(await engine.start("bench.two_steps", {"n": i}))
    return ids


def wait_done(store: Any, ids: list[str], deadline: float) -> list[dict[str, Any]]:
    from sqlalchemy import func, select

    from hub.store.store import EXECUTIONS

    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            left = conn.execute(
                select(func.count()).select_from(EXECUTIONS).where(
                    EXECUTIONS.c.id.in_(ids), EXECUTIONS.c.ended_at.is_(None)
                )
            ).scalar_one()
        if not left:
            break
        time.sleep(0.05)
    return [store.get_execution(i) for i in ids]


def report(name: str, rows: list[dict[str, Any]]) -> None:
    done = [r for r in rows if r["ended_at"]]
    ok = sum(r["state"] == "SUCCESS" for r in done)
    if not done:
        print(f"{name}: nothing finished")
        return
    span = max(r["ended_at"] for r in done) - min(r["created_at"] for r in done)
    latency = [(r["ended_at"] - r["created_at"]) * 1000 for r in done]
    wait = [(r["started_at"] - r["created_at"]) * 1000 for r in done if r["started_at"]]
    run = [(r["ended_at"] - r["started_at"]) * 1000 for r in done if r["started_at"]]
    print(f"{name}: {len(done)}/{len(rows)} ended ({ok} SUCCESS) in {span:.2f}s -> {len(done) / span:.0f} executions/s")
    print(f"  created->ended   p50 {pct(latency, 0.5):7.1f} ms   p99 {pct(latency, 0.99):7.1f} ms   "
          f"mean {statistics.fmean(latency):.1f} ms")
    print(f"  created->started p50 {pct(wait, 0.5):7.1f} ms   p99 {pct(wait, 0.99):7.1f} ms   (queue + pickup)")
    print(f"  started->ended   p50 {pct(run, 0.5):7.1f} ms   p99 {pct(run, 0.99):7.1f} ms   (engine + store)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=100.0, help="offered rate of the latency phase (/s)")
    parser.add_argument("--seconds", type=float, default=60.0, help="hard bound on the whole run")
    parser.add_argument("--concurrency", type=int, default=64, help="the worker's --concurrency")
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--async-commit", action="store_true",
                        help="synchronous_commit=off for the hub's connections (no fsync wait per commit)")
    parser.add_argument("--database-url", default=os.environ.get(
        "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    if args.async_commit:
        url += "%20-csynchronous_commit%3Doff"
    queue = f"hubbench:{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    settings = HubSettings(home=home, database_url=url, redis_url=args.redis_url)
    engine = build_engine(settings, queue=queue)  # migrates the schema before the worker starts
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_REDIS_URL": args.redis_url, "HUB_QUEUE_NAME": queue,
           "HUB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "hub.cli", "worker", "--concurrency", str(args.concurrency), "--log-level", "warning"],
            cwd=ROOT, env=env,
        )
        for _ in range(args.workers)
    ]
    deadline = time.monotonic() + args.seconds
    try:
        async def warm() -> None:
            ids = await submit(engine, 50, None, deadline)
            wait_done(engine.store, ids, deadline)

        asyncio.run(warm())
        engine.queue = build_engine(settings, store=engine.store, queue=queue).queue  # a pool per loop

        commit = "synchronous_commit=off" if args.async_commit else "synchronous_commit=on"
        print(f"PostgreSQL ({commit}) + Redis + {args.workers} worker(s) (concurrency {args.concurrency}), "
              f"2-step flow, {os.cpu_count()} CPUs")
        ids = asyncio.run(submit(engine, args.count, None, deadline))
        report(f"(a) throughput, {len(ids)} submitted at once", wait_done(engine.store, ids, deadline))

        engine.queue = build_engine(settings, store=engine.store, queue=queue).queue
        ids = asyncio.run(submit(engine, args.count // 2, args.rate, deadline))
        report(f"(b) latency at {args.rate:.0f}/s offered", wait_done(engine.store, ids, deadline))
    finally:
        for worker in workers:
            worker.kill()
            worker.wait()
        engine.store.close()
        import redis

        client = redis.Redis.from_url(args.redis_url)
        client.delete(queue, queue + ":wake")
        client.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
