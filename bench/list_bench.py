"""How fast a page of ``GET /v1/executions`` is as the history grows, filtered and deep.

    python bench/list_bench.py --executions 30000                      # SQLite (a temp file)
    python bench/list_bench.py --executions 30000 --url postgresql+psycopg://postgres@127.0.0.1:5432/test

Fills a fresh store with ``--executions`` rows (10 flows in 2 namespaces, 3% FAILED, every 50th
with the label ``customer: acme``, created one second apart), then times the store query behind
one page of 50 (what the API and ``hub executions list`` run), median of ``--repeat``:

- ``unfiltered``, ``state FAILED``, ``flow``, ``namespace``, ``label``: the newest page;
- ``deep offset`` / ``deep cursor``: the page 90% of the way into the history, reached with
  ``offset`` and with the keyset cursor (the ``next`` of the page before it).

Prints each in ms (wall, and CPU time of this process: steadier on a busy machine; on
PostgreSQL it leaves out the server's work) and its ratio to ``unfiltered``; the cases interleave. On PostgreSQL the rows go into a schema of
their own that is dropped at the end.
"""

from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.store.store import Store  # noqa: E402

PAGE = 50


def fill(store: Store, count: int) -> None:
    """``count`` executions, oldest first, in transactions of 2,000 rows."""
    start = time.time() - count
    batch: list[dict[str, Any]] = []
    for i in range(count):
        row = Store.execution_row(
            namespace=f"ns{i % 2}", flow_id=f"flow{i % 10}", revision=1, inputs={"n": i},
            state="FAILED" if i % 33 == 0 else "SUCCESS",
            labels={"customer": "acme"} if i % 50 == 0 else {"customer": f"c{i % 7}"},
        )
        row["created_at"] = row["updated_at"] = start + i
        batch.append(row)
        if len(batch) == 2000:
            store.insert_executions(batch)
            batch = []
    if batch:
        store.insert_executions(batch)


def measure(store: Store, count: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms of this process) per case; the cases interleave, round after round,
    so that a busy machine slows them alike."""
    ls = store.list_executions
    deep = int(count * 0.9) // PAGE * PAGE
    cases: dict[str, Callable[[], Any]] = {
        "unfiltered": lambda: ls(limit=PAGE),
        "state FAILED": lambda: ls(states=["FAILED"], limit=PAGE),
        "flow": lambda: ls(namespace="ns1", flow_id="flow3", limit=PAGE),
        "namespace": lambda: ls(namespace="ns0", limit=PAGE),
        "label": lambda: ls(label=("customer", "acme"), limit=PAGE),
        "deep offset": lambda: ls(limit=PAGE, offset=deep),
    }
    if "after" in inspect.signature(ls).parameters:  # keyset paging
        before = ls(limit=1, offset=deep - 1)[0]
        cases["deep cursor"] = lambda: ls(limit=PAGE, after=(before["created_at"], before["id"]))
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm the statement cache and the pages
    for _ in range(repeat):
        for name, fn in cases.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            samples[name].append(((time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0))
    return {
        name: (statistics.median(w for w, _ in got), statistics.median(c for _, c in got))
        for name, got in samples.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executions", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--url", help="database URL (default: a SQLite file in a temp folder)")
    args = parser.parse_args()
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{tmp}/bench.db"
        if url.startswith("postgresql"):
            from sqlalchemy import create_engine, text

            schema = f"list_bench_{int(time.time())}"
            with create_engine(url).begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            url += ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
        store = Store.open(url)
        try:
            begin = time.perf_counter()
            fill(store, args.executions)
            if store.engine.dialect.name == "postgresql":
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            filled = time.perf_counter() - begin
            results = measure(store, args.executions, args.repeat)
        finally:
            store.close()
            if schema:
                with create_engine(args.url).begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    print(f"{store.engine.dialect.name}, {args.executions:,} executions (filled in {filled:.1f} s), "
          f"page of {PAGE}, median of {args.repeat}")
    wall0, cpu0 = results["unfiltered"]
    print(f"  {'':<14} {'wall':>8}       {'':5}  {'CPU (this process)':>18}")
    for name, (wall, cpu) in results.items():
        print(f"  {name:<14} {wall:8.2f} ms  x{wall / wall0:<4.1f}  {cpu:8.2f} ms  x{cpu / max(cpu0, 1e-9):.1f}")


if __name__ == "__main__":
    main()
