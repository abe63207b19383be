"""Load generator for the API on loopback, bounded in count and time.

    python bench/api_bench.py enrich      [--requests 2000] [--serial 300] [--concurrency 16]
    python bench/api_bench.py enrich-llm  [--requests 2000] [--serial 300] [--concurrency 16]
    python bench/api_bench.py webhook     [--requests 2000] [--concurrency 32] [--rate 200 --rate-seconds 10]
        [--database-url postgresql+psycopg://...] [--redis-url redis://... --workers 1]

``enrich``: the enrichment API over a one-step flow. The overhead is the enrichment latency
minus that of ``GET /health`` on the same server (the HTTP floor), so it is what the hub adds:
auth, flow lookup, the persisted execution (row, step run, outputs) and the answer. ``--serial``
sequential calls of each give the overhead; then ``--requests`` calls, ``--concurrency`` at once.

``enrich-llm``: the same over a flow with one ``llm.chat`` step whose model is an OpenAI-compatible
stub in its own process, answering at once; the overhead is the enrichment latency minus that of
calling the stub directly.

``webhook``: a signed webhook (HMAC over timestamp and body) starting a two-step flow.
(a) throughput: ``--requests`` calls, ``--concurrency`` at once, as fast as the server takes them;
executions/s from the first created to the last ended. (b) latency at a fixed offered rate:
``--rate`` calls per second for ``--rate-seconds`` (open loop: a call is sent on schedule whether
or not earlier ones were answered); latency = created -> ended of each execution, from the store.

The server runs as ``hub serve`` in a subprocess (and ``hub worker`` processes with Redis), so the
load generator does not share its event loop. Everything shares the machine's cores, the load
generator included; it speaks HTTP/1.1 over keep-alive sockets itself (a full HTTP client costs
several times more CPU per request, taken from the server on a 2-core machine). Every run stops
after ``--max-seconds``.
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
from collections import Counter
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
LLM_FLOW = """\
id: classify
namespace: bench
inputs:
  - {id: text, type: string, required: true}
tasks:
  - id: label
    type: llm.chat
    model: stub
    messages: [{role: user, content: "Label this text: {{ inputs.text }}"}]
outputs: {label: "{{ outputs.label.text }}"}
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


STUB = """
import uvicorn
from hub.llm.fake import FakeOpenAI
uvicorn.run(FakeOpenAI(), host="127.0.0.1", port={port}, log_level="warning", access_log=False, lifespan="off")
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


class Connection:
    """One keep-alive HTTP/1.1 connection: requests written whole, answers read by Content-Length."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = time.monotonic()

    async def call(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self.writer.write(head.encode() + b"\r\n" + body)
        status = int((await self.reader.readline()).split()[1])
        length, chunked, close = 0, False, False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            parts = []
            while size := int((await self.reader.readline()).strip(), 16):
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.readexactly(length)
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Connections handed out one per call in flight."""

    def __init__(self, url: str):
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.idle: list[Connection] = []

    async def call(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        conn = None
        while self.idle and conn is None:
            conn = self.idle.pop()
            if time.monotonic() - conn.used > 2.0:  # the server closes idle keep-alives after 5 s
                conn.close()
                conn = None
        conn = conn or Connection(self.host, self.port)
        try:
            answer = await conn.call(method, path, body, headers)
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
            conn.close()
            return 0, b""
        conn.used = time.monotonic()
        self.idle.append(conn)
        return answer

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


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
        (flows / "classify.yaml").write_text(LLM_FLOW)
        (flows / "hook.yaml").write_text(WEBHOOK_FLOW)
        # the bench's own model aliases only (HUB_LLM_MODELS below): a models.yaml in the checkout
        # would make the server import litellm in the background while it is being measured
        self.env = {**os.environ, "HUB_HOME": str(self.home), "HUB_FLOWS_DIR": str(flows),
                    "HUB_LLM_MODELS_FILE": str(self.home / "models.yaml")}
        self.schema: str | None = None
        if args.database_url:  # a schema of its own, dropped at the end
            from sqlalchemy import create_engine, text

            self.schema = f"bench_{os.getpid()}_{int(time.time())}"
            admin = create_engine(args.database_url)
            with admin.begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {self.schema}"))
            admin.dispose()
            sep = "&" if "?" in args.database_url else "?"
            args.database_url = f"{args.database_url}{sep}options=-csearch_path%3D{self.schema}"
            self.env["HUB_DATABASE_URL"] = args.database_url
        if args.redis_url:
            self.env["HUB_REDIS_URL"] = args.redis_url
            self.env["HUB_QUEUE_NAME"] = f"hubbench:{os.getpid()}"

    def __enter__(self) -> Server:
        hub = [sys.executable, "-m", "hub.cli"]
        if self.args.which == "enrich-llm":  # an OpenAI-compatible stub that answers at once
            self.stub_port = _port()
            self.procs.append(subprocess.Popen(
                [sys.executable, "-c", STUB.format(port=self.stub_port)], cwd=ROOT, stderr=subprocess.DEVNULL,
            ))
            stub = {"model": "openai/bench-stub", "api_base": f"http://127.0.0.1:{self.stub_port}/v1",
                    "api_key": "bench", "input_cost_per_token": 1e-7, "output_cost_per_token": 4e-7}
            self.env.update(HUB_LLM_MODELS=json.dumps({"stub": stub}), LITELLM_LOCAL_MODEL_COST_MAP="True")
        self.server = subprocess.Popen(
            [*hub, "serve", "--port", str(self.port), "--log-level", "warning"], env=self.env, cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(self.server)
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
        if self.args.redis_url:
            import redis

            client = redis.Redis.from_url(self.args.redis_url)
            queue = self.env["HUB_QUEUE_NAME"]
            client.delete(queue, queue + ":wake", queue + ":health-check")
            client.close()
        if self.schema:
            from sqlalchemy import create_engine, text

            admin = create_engine(self.args.database_url)
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {self.schema} CASCADE"))
            admin.dispose()


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
    pool = Pool(server.url)
    json_header = {"content-type": "application/json"}

    async def health(i: int) -> bool:
        return (await pool.call("GET", "/health"))[0] == 200

    async def enrich(i: int) -> bool:
        body = json.dumps({"text": f"t{i}"}).encode()
        return (await pool.call("POST", "/v1/enrich/bench/echo", body, json_header))[0] == 200

    await _drive(50, 1, args.max_seconds, enrich)  # warm up
    result = await _overhead(args, server, "health_floor", health, enrich)
    pool.close()
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0.0 where it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _overhead(
    args: argparse.Namespace, server: Server, floor_name: str, floor_call: Any, enrich: Any
) -> dict[str, Any]:
    """Serial calls of ``floor_call`` and of ``enrich`` (overhead = the difference of the two),
    then ``enrich`` under load, with the server's CPU time per request (steadier than the rate
    on a shared machine)."""
    floor, _, _ = await _drive(args.serial, 1, args.max_seconds, floor_call)
    alone, _, errors0 = await _drive(args.serial, 1, args.max_seconds, enrich)
    cpu = cpu_seconds(server.server.pid)
    loaded, wall, errors = await _drive(args.requests, args.concurrency, args.max_seconds, enrich)
    cpu = cpu_seconds(server.server.pid) - cpu
    overhead = [a - pct(floor, 0.5) for a in alone]
    return {
        floor_name: _ms(floor),
        "enrich_serial": _ms(alone),
        "overhead_serial": _ms(overhead),
        "enrich_loaded": _ms(loaded) + f" at concurrency {args.concurrency}",
        "throughput_rps": round(len(loaded) / wall, 1),
        "server_cpu_ms_per_request": round(cpu / max(1, len(loaded)) * 1000, 2),
        "requests": len(loaded) + len(alone),
        "errors": errors + errors0,
    }


async def bench_enrich_llm(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """The enrichment API over a flow with one LLM step whose provider answers at once: the
    overhead is what the hub adds (API, execution, prompt, model client, validation) over the provider."""
    pool = Pool(server.url)
    stub = Pool(f"http://127.0.0.1:{server.stub_port}")
    json_header = {"content-type": "application/json"}

    async def provider(i: int) -> bool:
        body = json.dumps({"model": "bench-stub", "messages": [{"role": "user", "content": f"Label this text: t{i}"}]})
        return (await stub.call("POST", "/v1/chat/completions", body.encode(), json_header))[0] == 200

    async def enrich(i: int) -> bool:
        body = json.dumps({"text": f"t{i}"}).encode()
        return (await pool.call("POST", "/v1/enrich/bench/classify?cache=false", body, json_header))[0] == 200

    await _drive(50, 1, args.max_seconds, enrich)  # warm up (imports litellm in the server)
    await _drive(50, 1, args.max_seconds, provider)
    result = await _overhead(args, server, "provider_direct", provider, enrich)
    pool.close()
    stub.close()
    return result


def _ended(args: argparse.Namespace, server: Server, ids: list[str]) -> list[dict[str, Any]]:
    """The rows of ``ids`` once all have ended (or the time is up)."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import select

    from hub.settings import HubSettings
    from hub.store.store import EXECUTIONS, Store

    settings = HubSettings(home=server.home, database_url=args.database_url)
    store = Store.open(settings.resolved_database_url(), migrate=False)
    columns = (EXECUTIONS.c.id, EXECUTIONS.c.state, EXECUTIONS.c.created_at, EXECUTIONS.c.started_at, EXECUTIONS.c.ended_at)
    deadline = time.monotonic() + args.max_seconds
    rows: list[dict[str, Any]] = []
    while True:
        rows = []
        with store.auto.connect() as conn:
            for at in range(0, len(ids), 500):
                chunk = ids[at:at + 500]
                rows += [dict(r._mapping) for r in conn.execute(select(*columns).where(EXECUTIONS.c.id.in_(chunk)))]
        if all(r["ended_at"] for r in rows) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    store.close()
    missing = set(ids) - {r["id"] for r in rows}
    if missing:  # accepted (202) but not in the store: that would be lost work
        print(f"warning: {len(missing)} accepted executions not found: {sorted(missing)[:5]}", file=sys.stderr)
    return rows


def _executions(rows: list[dict[str, Any]]) -> dict[str, Any]:
    done = [r for r in rows if r["state"] == "SUCCESS" and r["ended_at"]]
    others = Counter(r["state"] for r in rows if r["state"] != "SUCCESS")
    if not done:
        return {"executions_succeeded": 0, "not_succeeded": dict(others)}
    span = max(r["ended_at"] for r in done) - min(r["created_at"] for r in done)
    return {
        "executions_succeeded": len(done),
        **({"not_succeeded": dict(others)} if others else {}),
        "executions_per_s": round(len(done) / span, 1),
        "execution_latency": _ms([r["ended_at"] - r["created_at"] for r in done]) + " (created -> ended)",
        "queue_wait": _ms([r["started_at"] - r["created_at"] for r in done if r["started_at"]]) + " (created -> started)",
    }


async def bench_webhook(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from hub.api.webhooks import sign

    pool = Pool(server.url)
    ids: list[str] = []
    refused: Counter[tuple[int, bytes]] = Counter()

    async def fire(i: int) -> bool:
        raw = json.dumps({"n": i}).encode()
        stamp = str(int(time.time()))
        status, body = await pool.call("POST", "/v1/webhooks/bench/hook/in", raw, {
            "content-type": "application/json", "X-Hub-Timestamp": stamp,
            "X-Hub-Signature": sign("bench-secret", stamp, raw),
        })
        if status != 202:
            refused[(status, body[:200])] += 1
            return False
        ids.append(json.loads(body)["id"])
        return True

    await _drive(50, 4, args.max_seconds, fire)  # warm up
    ids.clear()
    accepted, wall_accept, errors = await _drive(args.requests, args.concurrency, args.max_seconds, fire)
    result: dict[str, Any] = {
        "throughput": {
            "accepted": len(ids),
            "http_accept": _ms(accepted) + f" at concurrency {args.concurrency}",
            "accept_rps": round(len(accepted) / wall_accept, 1),
            **_executions(_ended(args, server, ids)),
            "errors": errors,
        }
    }
    if args.rate:
        ids.clear()
        calls: list[float] = []
        failed = 0

        async def timed(i: int) -> None:
            nonlocal failed
            started = time.perf_counter()
            ok = await fire(i)  # (not `failed += ... await ...`: that reads `failed` before the await)
            failed += 0 if ok else 1
            calls.append(time.perf_counter() - started)

        count = int(args.rate * args.rate_seconds)
        begin = time.perf_counter()
        tasks = []
        for i in range(count):
            delay = begin + i / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(timed(i)))
        await asyncio.gather(*tasks)
        result[f"at_{args.rate:g}_per_s"] = {
            "offered": count,
            "http_accept": _ms(calls),
            **_executions(_ended(args, server, ids)),
            "errors": failed,
        }
    pool.close()
    if refused:
        result["refused"] = {f"{status} {body.decode(errors='replace')}": n for (status, body), n in refused.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["enrich", "enrich-llm", "webhook"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--serial", type=int, default=300, help="Sequential calls for the overhead figure.")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rate", type=float, default=200.0, help="webhook: offered calls/s of the latency phase (0: skip)")
    parser.add_argument("--rate-seconds", type=float, default=10.0, help="webhook: length of the latency phase")
    args = parser.parse_args()
    with Server(args) as server:
        run = {"enrich": bench_enrich, "enrich-llm": bench_enrich_llm, "webhook": bench_webhook}[args.which]
        result = asyncio.run(run(args, server))
    setup = {"database": args.database_url or "sqlite", "queue": "arq/redis" if args.redis_url else "in process",
             "workers": args.workers if args.redis_url else 0, "cpus": os.cpu_count()}
    print(json.dumps({"bench": args.which, "setup": setup, **result}, indent=2))


if __name__ == "__main__":
    main()
