"""Engine overhead with persistence on (a SQLite file, WAL), as issue 2 defines it.

    python bench/engine_bench.py [--repeat 5] [--database-url URL]

(a) a flow of 100 sequential ``set`` steps: milliseconds per persisted step;
(b) a ``for_each`` over 1,000 items with one trivial step: seconds for the whole execution;
(c) the whole-process wall time of ``hub run`` on a 10-step flow (a fresh interpreter each time);
(d) a flow of 100 ``python`` steps calling a sync function, (e) the same with an async one:
    milliseconds of hub time per durable side-effecting step (the functions do nothing).

Each figure is the median of ``--repeat`` runs. Nothing here asserts: it prints what it measured.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.flow.loader import load_text  # noqa: E402
from hub.testing import make_engine  # noqa: E402


def sequential_flow(n: int) -> str:
    steps = "\n".join(f"  - {{id: s{i}, type: set, values: {{v: '{{{{ {i} + 1 }}}}'}}}}" for i in range(n))
    return f"id: seq{n}\ntasks:\n{steps}\n"


FOR_EACH = """
id: fan
tasks:
  - id: each
    type: for_each
    items: "{{ range(1000) | list }}"
    tasks:
      - {id: one, type: set, values: {v: "{{ item }}"}}
"""


CPU: list[float] = []  # process CPU seconds of each timed run (all threads): "hub time" on a busy machine


async def _timed(engine, flow) -> float:  # type: ignore[no-untyped-def]
    engine.deploy(flow)
    cpu = time.process_time()
    start = time.perf_counter()
    execution = await engine.execute(flow)
    elapsed = time.perf_counter() - start
    CPU.append(time.process_time() - cpu)
    assert execution["state"] == "SUCCESS", execution["error"]
    return elapsed


def python_flow(n: int, function: str) -> str:
    steps = "\n".join(
        f"  - {{id: p{i}, type: python, function: 'bench.steps:{function}', args: ['{{{{ {i} }}}}']}}" for i in range(n)
    )
    return f"id: py{function}{n}\ntasks:\n{steps}\n"


def measure(text: str, repeat: int, url: str | None, middleware=None) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    flow = load_text(text)  # parsing is deploy-time work, not per execution
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as home:
            engine = make_engine(home=home, **({"database_url": url} if url else {}))
            if middleware:
                middleware(engine)
            asyncio.run(_timed(engine, flow))  # warm-up: caches, first connection
            times.append(asyncio.run(_timed(engine, flow)))
            engine.store.close()
    return times


def hub_run_wall(repeat: int) -> list[float]:
    times = []
    flow = sequential_flow(10).replace("seq10", "ten")
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "ten.yaml"
        path.write_text(flow)
        env = {**os.environ, "HUB_HOME": str(Path(home) / ".hub")}
        env.pop("HUB_DATABASE_URL", None)
        cmd = [str(Path(sys.executable).with_name("hub")), "run", str(path), "-q", "--flows", str(Path(home) / "none")]
        subprocess.run(cmd, env=env, cwd=home, check=True, capture_output=True)  # create the database once
        for _ in range(repeat):
            start = time.perf_counter()
            subprocess.run(cmd, env=env, cwd=home, check=True, capture_output=True)
            times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    seq = measure(sequential_flow(100), args.repeat, args.database_url)
    per_step = statistics.median(seq) / 100 * 1000
    print(f"(a) 100 sequential set steps: {statistics.median(seq) * 1000:.1f} ms -> {per_step:.3f} ms per persisted step (target <= 0.3)")
    fan = measure(FOR_EACH, args.repeat, args.database_url)
    print(f"(b) for_each over 1,000 items: {statistics.median(fan):.3f} s (target <= 0.5)")
    os.environ.setdefault("HUB_PYTHON_MODULES", "bench")
    for label, function, target in (("(d) python step, sync function", "echo", 0.15),
                                    ("(e) python step, async function", "aecho", 0.1)):
        CPU.clear()
        times = measure(python_flow(100, function), args.repeat, args.database_url)
        cpu = statistics.median(CPU[1::2])  # the timed run of each pair (the other warms up)
        print(f"{label}: {statistics.median(times) / 100 * 1000:.3f} ms per durable step, "
              f"{cpu / 100 * 1000:.3f} ms CPU (target <= {target})")
    if args.database_url is None:
        wall = hub_run_wall(args.repeat)
        print(f"(c) hub run, 10-step flow, whole process: {statistics.median(wall):.3f} s (target <= 1.0)")


if __name__ == "__main__":
    main()
