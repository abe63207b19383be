"""The hub on PostgreSQL + Redis against raw arq on the same Redis, measured side by side.

    python bench/distributed_bench.py [--rounds 3] [--count 2000] [--rate 200 --rate-seconds 8]
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--redis-url redis://127.0.0.1:6379/7]
        [--baseline /path/to/another/hub/checkout]

Each round runs these phases, in an order that rotates from round to round (so a slow minute of
the shared machine does not land on one side only):

- ``arq``: a plain arq worker (``max_jobs`` = the hub worker's concurrency, polling every
  ``--arq-poll-delay`` since arq has no wake-up) runs a job that does nothing; the load generator
  enqueues with ``ArqRedis.enqueue_job``. Times come from arq's own job results (enqueued,
  started, finished).
- ``hub``: ``hub serve`` + one ``hub worker`` on PostgreSQL (a schema of its own) and Redis; the
  load generator sends signed webhooks that start a two-step flow. Times come from the execution
  rows (created, started, ended).
- ``base`` (with ``--baseline DIR``): the same as ``hub``, run from another checkout (e.g. main
  before a change), with its own schema and queue, so before and after are measured in one run.

Per phase: (a) throughput: ``--count`` starts, ``--concurrency`` at once, as fast as they are
taken; executions (jobs) per second from the first created (enqueued) to the last ended
(finished). (b) latency at ``--rate``/s offered for ``--rate-seconds`` (open loop): start latency
(created -> started) and end latency (created -> ended) p50/p99. CPU time of the hub's processes
(server + worker) or of the arq worker per execution, and the workers' resident memory (RSS) after
each round, are printed too. Everything runs on this machine (loopback); the load average is
printed with each round. Bounded by ``--max-seconds`` per phase; nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from api_bench import WEBHOOK_FLOW, Pool, _port, cpu_seconds, pct  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIGNING_SECRET = "bench-secret"
ARQ_WORKER = """
import sys
from arq.connections import RedisSettings
from arq.worker import Worker

async def noop(ctx, n):
    return n

url, queue, max_jobs, poll_delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
Worker(functions=[noop], queue_name=queue, redis_settings=RedisSettings.from_dsn(url), max_jobs=max_jobs,
       poll_delay=poll_delay, keep_result=600, log_results=False).run()
"""


def rss_mib(pid: int) -> float:
    """Resident memory of a process (Linux /proc), 0.0 where it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _sign(timestamp: str, body: bytes) -> str:
    import hashlib
    import hmac

    return "sha256=" + hmac.new(SIGNING_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


async def closed_loop(count: int, concurrency: int, deadline: float, call: Any) -> None:
    next_index = 0

    async def one() -> None:
        nonlocal next_index
        while next_index < count and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            await call(i)

    await asyncio.gather(*(one() for _ in range(concurrency)))


async def open_loop(rate: float, seconds: float, call: Any) -> None:
    begin = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(call(i)))
    await asyncio.gather(*tasks)


def summary(rows: list[tuple[float, float | None, float | None]], offered: int) -> dict[str, Any]:
    """``rows``: (created, started, ended) per execution or job, epoch seconds."""
    done = [(c, s, e) for c, s, e in rows if s is not None and e is not None]
    if not done:
        return {"ended": 0, "offered": offered}
    span = max(e for _, _, e in done) - min(c for c, _, _ in done)
    start = [(s - c) * 1000 for c, s, _ in done]
    end = [(e - c) * 1000 for c, _, e in done]
    return {
        "ended": len(done), "offered": offered, "per_s": round(len(done) / span, 1),
        "start_p50_ms": round(pct(start, 0.5), 2), "start_p99_ms": round(pct(start, 0.99), 2),
        "end_p50_ms": round(pct(end, 0.5), 2), "end_p99_ms": round(pct(end, 0.99), 2),
    }


class RawArq:
    """A plain arq worker, started for each phase and stopped after it."""

    name = "arq"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.queue = f"distbench:arq:{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.rss = 0.0
        self.total = 0

    async def phase(self, count: int, rate: float | None) -> dict[str, Any]:
        from arq.connections import RedisSettings, create_pool
        from arq.constants import result_key_prefix
        from arq.jobs import Job

        self.proc = subprocess.Popen([
            sys.executable, "-c", ARQ_WORKER, self.args.redis_url, self.queue,
            str(self.args.worker_concurrency), str(self.args.arq_poll_delay),
        ], cwd=ROOT, stderr=subprocess.DEVNULL)
        pool = await create_pool(RedisSettings.from_dsn(self.args.redis_url), default_queue_name=self.queue)
        try:
            while not await pool.exists(self.queue + ":health-check"):  # arq writes it once it polls
                await asyncio.sleep(0.05)
            job_ids: list[str] = []

            async def enqueue(i: int) -> None:
                job = await pool.enqueue_job("noop", i)
                if job is not None:
                    job_ids.append(job.job_id)

            cpu = cpu_seconds(self.proc.pid)
            deadline = time.monotonic() + self.args.max_seconds
            if rate:
                await open_loop(rate, self.args.rate_seconds, enqueue)
            else:
                await closed_loop(count, self.args.concurrency, deadline, enqueue)
            rows: list[tuple[float, float | None, float | None]] = []
            keys = [result_key_prefix + j for j in job_ids]
            while time.monotonic() < deadline:  # one round trip a look, not one per job
                if sum([await pool.exists(*keys[at:at + 500]) for at in range(0, len(keys), 500)]) == len(keys):
                    break
                await asyncio.sleep(0.2)
            results = await asyncio.gather(*(Job(j, pool).result_info() for j in job_ids))
            for r in results:
                if r is not None:
                    rows.append((r.enqueue_time.timestamp(), r.start_time.timestamp(), r.finish_time.timestamp()))
            cpu = cpu_seconds(self.proc.pid) - cpu
            self.rss = rss_mib(self.proc.pid)
            self.total += len(rows)
            out = summary(rows, len(job_ids))
            out["cpu_ms_per"] = round(cpu / max(1, len(rows)) * 1000, 3)
            return out
        finally:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
            keys = [k async for k in pool.scan_iter(match="arq:result:*")]
            for at in range(0, len(keys), 1000):
                await pool.delete(*keys[at:at + 1000])
            await pool.delete(self.queue, self.queue + ":health-check")
            await pool.aclose()

    def close(self) -> None:
        pass


class Hub:
    """``hub serve`` + ``hub worker`` from a source tree, on a schema and a queue of their own."""

    def __init__(self, name: str, root: Path, args: argparse.Namespace):
        from sqlalchemy import create_engine, text

        self.name, self.root, self.args = name, root, args
        self.home = Path(tempfile.mkdtemp(prefix=f"hub-distbench-{name}-"))
        (self.home / "flows").mkdir()
        (self.home / "flows" / "hook.yaml").write_text(WEBHOOK_FLOW)
        self.schema = f"distbench_{name}_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(args.database_url)
        with self.admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {self.schema}"))
        sep = "&" if "?" in args.database_url else "?"
        self.url = f"{args.database_url}{sep}options=-csearch_path%3D{self.schema}"
        self.queue = f"distbench:{name}:{uuid.uuid4().hex[:8]}"
        self.port = _port()
        env = {**os.environ, "HUB_HOME": str(self.home), "HUB_FLOWS_DIR": str(self.home / "flows"),
               "HUB_DATABASE_URL": self.url, "HUB_REDIS_URL": args.redis_url, "HUB_QUEUE_NAME": self.queue,
               "PYTHONPATH": str(root),
               # the flow calls no model: litellm's import (seconds of CPU in a background thread of
               # the server, when the checkout's models.yaml names a litellm alias) would land in
               # whichever phase is measured first
               "HUB_LLM_PRELOAD": "false"}
        hub = [sys.executable, "-m", "hub.cli"]
        self.server = subprocess.Popen([*hub, "serve", "--port", str(self.port), "--log-level", "warning"],
                                       env=env, cwd=root, stderr=subprocess.DEVNULL)
        self.wait_ready()
        self.worker = subprocess.Popen(
            [*hub, "worker", "--concurrency", str(args.worker_concurrency), "--log-level", "warning"], env=env, cwd=root,
        )
        self.pool = Pool(f"http://127.0.0.1:{self.port}")
        self.rss = 0.0
        self.total = 0
        self.db = create_engine(self.url)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"{self.name}: the server did not start within 60 s")

    async def fire(self, i: int, ids: list[str]) -> None:
        raw = json.dumps({"n": i}).encode()
        stamp = str(int(time.time()))
        status, body = await self.pool.call("POST", "/v1/webhooks/bench/hook/in", raw, {
            "content-type": "application/json", "X-Hub-Timestamp": stamp, "X-Hub-Signature": _sign(stamp, raw),
        })
        if status == 202:
            ids.append(json.loads(body)["id"])

    def rows(self, ids: list[str], deadline: float) -> list[tuple[float, float | None, float | None]]:
        from sqlalchemy import text

        query = text("SELECT created_at, started_at, ended_at FROM executions WHERE id = ANY(:ids)")
        while True:
            with self.db.connect() as conn:
                rows = [tuple(r) for r in conn.execute(query, {"ids": ids})]
            if (len(rows) == len(ids) and all(r[2] is not None for r in rows)) or time.monotonic() > deadline:
                return rows  # type: ignore[return-value]
            time.sleep(0.2)

    async def phase(self, count: int, rate: float | None) -> dict[str, Any]:
        ids: list[str] = []
        procs = (self.server.pid, self.worker.pid)
        cpu = [cpu_seconds(p) for p in procs]
        deadline = time.monotonic() + self.args.max_seconds
        if rate:
            await open_loop(rate, self.args.rate_seconds, lambda i: self.fire(i, ids))
        else:
            await closed_loop(count, self.args.concurrency, deadline, lambda i: self.fire(i, ids))
        rows = await asyncio.to_thread(self.rows, ids, deadline)
        server_cpu, worker_cpu = (cpu_seconds(p) - c for p, c in zip(procs, cpu, strict=True))
        self.rss = rss_mib(self.worker.pid)
        self.total += len(rows)
        out = summary(rows, len(ids))
        n = max(1, len(rows))
        out["cpu_ms_per"] = round((server_cpu + worker_cpu) / n * 1000, 3)
        out["worker_cpu_ms_per"] = round(worker_cpu / n * 1000, 3)
        return out

    async def warm(self) -> None:
        ids: list[str] = []
        await closed_loop(100, 4, time.monotonic() + 30, lambda i: self.fire(i, ids))
        await asyncio.to_thread(self.rows, ids, time.monotonic() + 30)

    def close(self) -> None:
        from sqlalchemy import text

        self.pool.close()
        for proc in (self.worker, self.server):
            proc.send_signal(signal.SIGTERM)
        for proc in (self.worker, self.server):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.db.dispose()
        import redis

        client = redis.Redis.from_url(self.args.redis_url)
        client.delete(self.queue, self.queue + ":wake", self.queue + ":health-check")
        client.close()
        with self.admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))
        self.admin.dispose()


def _median(results: list[dict[str, Any]], key: str) -> float:
    values = [r[key] for r in results if key in r]
    return round(statistics.median(values), 2) if values else float("nan")


async def run(args: argparse.Namespace) -> None:
    sides: list[Any] = [RawArq(args)]
    try:
        sides.append(Hub("hub", ROOT, args))
        if args.baseline:
            sides.append(Hub("base", Path(args.baseline).resolve(), args))
        for side in sides[1:]:
            await side.warm()
        results: dict[tuple[str, str], list[dict[str, Any]]] = {}
        print(f"{os.cpu_count()} CPUs; worker concurrency {args.worker_concurrency}; {args.count} starts at "
              f"concurrency {args.concurrency}; {args.rate:g}/s for {args.rate_seconds:g} s", flush=True)
        for round_no in range(args.rounds):
            shift = round_no % len(sides)
            order = sides[shift:] + sides[:shift]
            for kind, count, rate in (("throughput", args.count, None), (f"at {args.rate:g}/s", 0, args.rate)):
                for side in order:
                    result = await side.phase(count, rate)
                    results.setdefault((side.name, kind), []).append(result)
                    print(f"round {round_no + 1} {side.name:4} {kind:10} load {load_average()}: {json.dumps(result)}",
                          flush=True)
            print("  worker RSS: " + ", ".join(f"{s.name} {s.rss:.0f} MiB after {s.total}" for s in sides), flush=True)
        print("\nmedians over rounds:")
        arq_rate = _median(results[("arq", "throughput")], "per_s")
        for (name, kind), rs in results.items():
            keys = ("per_s", "start_p50_ms", "start_p99_ms", "end_p50_ms", "end_p99_ms", "cpu_ms_per")
            line = ", ".join(f"{k} {_median(rs, k)}" for k in keys)
            ratio = f" (x{_median(rs, 'per_s') / arq_rate:.2f} of arq)" if kind == "throughput" else ""
            print(f"  {name:4} {kind:10} {line}{ratio}")
        print("  worker RSS: " + ", ".join(f"{s.name} {s.rss:.0f} MiB after {s.total}" for s in sides))
    finally:
        for side in sides:
            side.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--count", type=int, default=2000, help="starts of a throughput phase")
    parser.add_argument("--concurrency", type=int, default=32, help="starts in flight in a throughput phase")
    parser.add_argument("--rate", type=float, default=200.0, help="offered starts/s of a latency phase")
    parser.add_argument("--rate-seconds", type=float, default=8.0)
    parser.add_argument("--worker-concurrency", type=int, default=64)
    parser.add_argument("--arq-poll-delay", type=float, default=0.005)
    parser.add_argument("--max-seconds", type=float, default=90.0, help="bound on one phase")
    parser.add_argument("--baseline", default=None, help="another hub checkout, run side by side")
    parser.add_argument("--database-url", default=os.environ.get(
        "HUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get("HUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/7"))
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
