"""Load generator for the API on loopback, bounded in count and time.

    python bench/api_bench.py enrich  [--requests 2000] [--concurrency 16]
    python bench/api_bench.py webhook [--requests 2000] [--concurrency 32]
        [--database-url postgresql+psycopg://...] [--redis-url redis://... --workers 1]

``enrich``: the enrichment API over a one-step flow. The overhead is the enrichment latency
minus that of ``GET /health`` on the same server (the HTTP floor), so it is what the hub adds:
auth, flow lookup, the persisted execution (row, step run, outputs) and the answer.

``webhook``: a signed webhook starting a two-step flow; executions/s from the first accepted
request to the last execution ended, latency = created -> ended of each execution (from the store).

The server runs as ``hub serve`` in a subprocess (and ``hub worker`` processes with Redis), so the
load generator does not share its event loop. Every run stops after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
ENRICH_FLOW = """\
id: echo
namespace: bench
inputs:
  - {id: text, type: string, required: true}
tasks:
  - {id: upper, type: set, values: {text: "{{ inputs.text | upper }}"}}
outputs: {text: "{{ outputs.upper.text }}"}
"""
WEBHOOK_FLOW = """\
id: hook
namespace: bench
inputs:
  - {id: n, type: int, required: true}
triggers:
  - {id: in, type: webhook, signing_secret: bench-secret}
tasks:
  - {id: first, type: set, values: {n: "{{ inputs.n }}"}}
  - {id: second, type: set, values: {double: "{{ outputs.first.n * 2 }}"}}
outputs: {double: "{{ outputs.second.double }}"}
"""


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Server:
    """``hub serve`` (and workers) in subprocesses on a temporary home."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix="hub-bench-"))
        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[bytes]] = []
        flows = self.home / "flows"
        flows.mkdir()
        (flows / "echo.yaml").write_text(ENRICH_FLOW)
        (flows / "hook.yaml").write_text(WEBHOOK_FLOW)
        self.env = {**os.environ, "HUB_HOME": str(self.home), "HUB_FLOWS_DIR": str(flows)}
        if args.database_url:
            self.env["HUB_DATABASE_URL"] = args.database_url
        if args.redis_url:
            self.env["HUB_REDIS_URL"] = args.redis_url
            self.env["HUB_QUEUE_NAME"] = f"hubbench:{os.getpid()}"

    def __enter__(self) -> Server:
        hub = [sys.executable, "-m", "hub.cli"]
        self.procs.append(subprocess.Popen(
            [*hub, "serve", "--port", str(self.port), "--log-level", "warning"], env=self.env, cwd=ROOT,
            stderr=subprocess.DEVNULL,
        ))
        if self.args.redis_url:
            for _ in range(self.args.workers):
                self.procs.append(subprocess.Popen([*hub, "worker", "--log-level", "warning"], env=self.env, cwd=ROOT))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise SystemExit("the server did not start within 30 s")

    def __exit__(self, *exc: Any) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _drive(count: int, concurrency: int, max_seconds: float, call: Any) -> tuple[list[float], float, int]:
    """Run ``call(i)`` ``count`` times, ``concurrency`` at once; latencies (s), wall time, errors."""
    latencies: list[float] = []
    errors = 0
    next_index = 0
    deadline = time.monotonic() + max_seconds

    async def worker() -> None:
        nonlocal next_index, errors
        while next_index < count and time.monotonic() < deadline:
            i = next_index
            next_index += 1
            started = time.perf_counter()
            ok = await call(i)
            latencies.append(time.perf_counter() - started)
            errors += 0 if ok else 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - started, errors


def _ms(values: list[float]) -> str:
    return f"p50 {pct(values, 0.5) * 1000:.2f} ms, p99 {pct(values, 0.99) * 1000:.2f} ms"


async def bench_enrich(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        for _ in range(50):  # warm up
            await client.post("/v1/enrich/bench/echo", json={"text": "warm"})

        async def health(i: int) -> bool:
            return (await client.get("/health")).status_code == 200

        async def serial_enrich(i: int) -> bool:
            return (await client.post("/v1/enrich/bench/echo", json={"text": f"t{i}"})).status_code == 200

        floor, _, _ = await _drive(args.serial, 1, args.max_seconds, health)
        alone, _, errors0 = await _drive(args.serial, 1, args.max_seconds, serial_enrich)
        loaded, wall, errors = await _drive(args.requests, args.concurrency, args.max_seconds, serial_enrich)
    overhead = [a - pct(floor, 0.5) for a in alone]
    return {
        "health_floor": _ms(floor),
        "enrich_serial": _ms(alone),
        "overhead_serial": _ms(overhead),
        "enrich_loaded": _ms(loaded) + f" at concurrency {args.concurrency}",
        "throughput_rps": round(len(loaded) / wall, 1),
        "requests": len(loaded) + len(alone),
        "errors": errors + errors0,
    }


async def bench_webhook(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from hub.api.webhooks import sign
    from hub.settings import HubSettings
    from hub.store.store import Store

    ids: list[str] = []
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:

        async def fire(i: int) -> bool:
            raw = json.dumps({"n": i}).encode()
            stamp = str(int(time.time()))
            response = await client.post(
                "/v1/webhooks/bench/hook/in", content=raw,
                headers={"content-type": "application/json", "X-Hub-Timestamp": stamp,
                         "X-Hub-Signature": sign("bench-secret", stamp, raw)},
            )
            if response.status_code != 202:
                return False
            ids.append(response.json()["id"])
            return True

        accepted, wall_accept, errors = await _drive(args.requests, args.concurrency, args.max_seconds, fire)

    settings = HubSettings(home=server.home, database_url=args.database_url)
    store = Store.open(settings.resolved_database_url(), migrate=False)
    deadline = time.monotonic() + args.max_seconds
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = store.list_executions(namespace="bench", flow_id="hook", limit=len(ids) + 10)
        if sum(r["state"] == "SUCCESS" for r in rows) >= len(ids):
            break
        await asyncio.sleep(0.2)
    store.close()
    done = [r for r in rows if r["state"] == "SUCCESS" and r["ended_at"]]
    latency = [r["ended_at"] - r["created_at"] for r in done]
    span = (max(r["ended_at"] for r in done) - min(r["created_at"] for r in done)) if done else float("nan")
    return {
        "accepted": len(ids),
        "http_accept": _ms(accepted) + f" at concurrency {args.concurrency}",
        "executions_succeeded": len(done),
        "executions_per_s": round(len(done) / span, 1) if done else 0,
        "execution_latency": _ms(latency) + " (created -> ended)",
        "accept_rps": round(len(accepted) / wall_accept, 1),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["enrich", "webhook"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serial", type=int, default=300, help="Sequential calls for the overhead figure.")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with Server(args) as server:
        run = bench_enrich if args.which == "enrich" else bench_webhook
        result = asyncio.run(run(args, server))
    setup = {"database": args.database_url or "sqlite", "queue": "arq/redis" if args.redis_url else "in process",
             "workers": args.workers if args.redis_url else 0, "cpus": os.cpu_count()}
    print(json.dumps({"bench": args.which, "setup": setup, **result}, indent=2))


if __name__ == "__main__":
    main()
