"""Server time of the console's executions list and execution page on a large PostgreSQL store.

    python bench/console_pages.py [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--executions 100000] [--steps 10] [--requests 50]

Fills a fresh schema with ``--executions`` executions of 10 flows (states mixed, labels) and
``--steps`` step runs each (1,000,000 by default: ten per execution, a retried step among them)
and their label rows, written with COPY, then ANALYZE. The app runs in-process (the hub's own app, console mounted,
open server); each page is requested ``--requests`` times and timed from request to full body,
which is the server's time plus a few tens of microseconds of in-process ASGI transport. The
schema is dropped at the end. Prints p50 / p95 / max per page in milliseconds.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

FLOWS = [f"flow_{n}" for n in range(10)]
STATES = ["SUCCESS"] * 8 + ["FAILED", "WARNING"]


def _copy(raw: object, table: str, columns: list[str], rows: list[list[object]]) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join("\\N" if v is None else str(v).replace("\\", "\\\\").replace("\t", " ") for v in row))
        buffer.write("\n")
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
        copy.write(buffer.getvalue())


def fill(url: str, executions: int, steps: int) -> list[str]:
    """Executions and step runs, by COPY in batches; returns some execution ids to open."""
    engine = create_engine(url)
    rng = random.Random(7)
    start = time.time() - executions  # one a second, newest now
    sample: list[str] = []
    batch = 10_000
    with engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        for first in range(0, executions, batch):
            ex_rows, step_rows, label_rows = [], [], []
            for n in range(first, min(first + batch, executions)):
                ident = uuid.uuid4().hex
                created = start + n
                state = rng.choice(STATES)
                flow = FLOWS[n % len(FLOWS)]
                ex_rows.append([ident, "bench", flow, 1, state, json.dumps({"n": n}), json.dumps({"ok": True}),
                                json.dumps({"type": "TaskError", "message": "boom"}) if state == "FAILED" else None,
                                json.dumps({"team": f"t{n % 5}"}), json.dumps({"type": "api"}),
                                created, created + 0.01, created + 0.5, created + 0.5])
                label_rows.append([ident, "team", f"t{n % 5}", created])
                t = created + 0.01
                for s in range(steps):
                    attempt = 2 if s == 3 else 1
                    if s == 3:  # a failed first attempt, retried
                        step_rows.append([ident, f"step_{s}", f"step_{s}", "http.request", 1, "FAILED",
                                          json.dumps({"url": "https://example.com"}), None,
                                          json.dumps({"type": "ConnectorError", "message": "502"}), t, t + 0.01])
                        t += 0.05
                    step_rows.append([ident, f"step_{s}", f"step_{s}", "set", attempt, "SUCCESS",
                                      json.dumps({"values": {"i": s}}), json.dumps({"i": s}), None, t, t + 0.02])
                    t += 0.03
                if n % 997 == 0:
                    sample.append(ident)
            _copy(raw, "executions", ["id", "namespace", "flow_id", "revision", "state", "inputs", "outputs", "error",
                                      "labels", "trigger", "created_at", "started_at", "ended_at", "updated_at"], ex_rows)
            _copy(raw, "step_runs", ["execution_id", "path", "task_id", "task_type", "attempt", "state", "params",
                                     "output", "error", "started_at", "ended_at"], step_rows)
            _copy(raw, "execution_labels", ["execution_id", "key", "value", "created_at"], label_rows)
            raw.commit()
        conn.execute(text("ANALYZE executions"))
        conn.execute(text("ANALYZE step_runs"))
        conn.execute(text("ANALYZE execution_labels"))
        conn.commit()
    engine.dispose()
    return sample


def timed(client: object, url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        begin = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        out.append((time.perf_counter() - begin) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=10, help="step runs per execution (one more for the retry)")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from hub.api.app import create_app
    from hub.store.store import Store
    from hub.testing import make_engine

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.database_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    sep = "&" if "?" in args.database_url else "?"
    url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    try:
        store = Store.open(url)
        began = time.perf_counter()
        sample = fill(url, args.executions, args.steps)
        with store.engine.connect() as conn:
            counts = conn.execute(text("SELECT (SELECT count(*) FROM executions), (SELECT count(*) FROM step_runs)")).one()
        print(f"filled {counts[0]:,} executions, {counts[1]:,} step runs in {time.perf_counter() - began:.0f} s")
        print("load average (1, 5, 15 min): " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
        engine = make_engine(store, home=Path(tempfile.mkdtemp()))
        app = create_app(engine, auth="open", background=False)
        with TestClient(app) as client:
            first = client.get("/executions").text
            cursor = first.split("before=")[1].split('"')[0].replace("&amp;", "&")
            deep_cursor = f"{time.time() - args.executions * 0.9!r}~{'f' * 32}"
            pages = {
                "executions list (newest 50)": "/executions",
                "executions list, next page": f"/executions?before={cursor}",
                "executions list, 90% deep": f"/executions?before={deep_cursor}",
                "executions list, flow + FAILED": "/executions?flow=bench.flow_3&state=FAILED",
                "executions list, label": "/executions?label=team:t2",
                "execution page (11 step runs)": f"/executions/{sample[len(sample) // 2]}",
                "execution live part": f"/executions/{sample[1]}/live",
            }
            for name, path in pages.items():
                timed(client, path, 3)  # warm
                ms = timed(client, path, args.requests)
                ms.sort()
                print(f"{name:36s} p50 {statistics.median(ms):6.1f} ms   p95 {ms[int(len(ms) * 0.95) - 1]:6.1f} ms"
                      f"   max {ms[-1]:6.1f} ms")
        store.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
