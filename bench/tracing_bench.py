"""Overhead of tracing on the engine benchmark's 100-step flow (issue 7: target under 20%).

    python bench/tracing_bench.py [--repeat 7]

Configurations, each measured with bench/engine_bench.py's ``measure`` (SQLite file, WAL, one
warm-up run per engine), interleaved so that drift hits all of them alike:

- off:        no tracing middleware
- otlp-like:  middleware + a batch processor feeding an exporter that drops spans (the cost of
              making spans; a real OTLP exporter sends from its own thread)
- hub-db:     middleware + the hub's own span store (batched writes to the same SQLite file),
              the embedded default
- both:       the two above together (the default: pure steps such as ``set`` are events on
              their parent span, HUB_TRACE_PURE_STEPS=events)
- both-spans: both, with a span for every pure step too (HUB_TRACE_PURE_STEPS=spans)
- both-nopure: both, pure steps not traced at all (HUB_TRACE_PURE_STEPS=off; the benchmark flow
              is nothing but ``set`` steps, so this shows the execution-level cost)

Two figures per configuration, medians over every run: the wall time of an execution (what the
issue's target is about: the exporters' batch threads write the spans later, as in production),
and the CPU time of the whole process per execution with those exports included (every thread,
the spans flushed before the clock stops) — what tracing costs a busy worker in total.

Nothing here asserts; it prints the medians and the overhead against ``off``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

from bench.engine_bench import _timed, sequential_flow  # noqa: E402
from hub.flow.loader import load_text  # noqa: E402
from hub.telemetry.middleware import install  # noqa: E402
from hub.telemetry.setup import build_tracer_provider  # noqa: E402
from hub.testing import make_engine  # noqa: E402


class Drop(SpanExporter):
    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def traced(exporters: bool, store: bool, pure_steps: str = "events") -> Callable[[Any], Any]:
    def setup(engine: Any) -> Any:
        provider = build_tracer_provider([Drop()] if exporters else [], store=engine.store if store else None)
        install(engine, provider).pure_steps = pure_steps
        return provider

    return setup


CONFIGS: dict[str, Callable[[Any], Any] | None] = {
    "off": None,
    "otlp-like": traced(exporters=True, store=False),
    "hub-db": traced(exporters=False, store=True),
    "both": traced(exporters=True, store=True),
    "both-spans": traced(exporters=True, store=True, pure_steps="spans"),
    "both-nopure": traced(exporters=True, store=True, pure_steps="off"),
}


def measure(flow: Any, setup: Callable[[Any], Any] | None, runs: int = 3) -> tuple[list[float], float]:
    """``runs`` timed executions on a fresh engine and database, after one warm-up execution:
    their wall times, and the process CPU time per execution with their spans exported."""
    with tempfile.TemporaryDirectory() as home:
        engine = make_engine(home=home)
        provider = setup(engine) if setup else None
        asyncio.run(_timed(engine, flow))
        if provider is not None:
            provider.force_flush()
        cpu = time.process_time()
        elapsed = [asyncio.run(_timed(engine, flow)) for _ in range(runs)]
        if provider is not None:
            provider.force_flush()
        cpu = (time.process_time() - cpu) / runs
        if provider is not None:
            provider.shutdown()  # flush the batch before the database goes away
        engine.store.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    flow = load_text(sequential_flow(100))
    times: dict[str, list[float]] = {name: [] for name in CONFIGS}
    cpu: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for _ in range(args.repeat):
        for name, setup in CONFIGS.items():
            elapsed, per_execution = measure(flow, setup)
            times[name].extend(elapsed)
            cpu[name].append(per_execution)
    base, base_cpu = statistics.median(times["off"]), statistics.median(cpu["off"])
    for name, values in times.items():
        median, median_cpu = statistics.median(values), statistics.median(cpu[name])
        print(f"{name:11s} 100 steps: {median * 1000:6.2f} ms  ({median / 100 * 1000:.3f} ms/step)  "
              f"overhead {100 * (median - base) / base:+6.1f}%   "
              f"cpu with export {median_cpu * 1000:6.2f} ms  {100 * (median_cpu - base_cpu) / base_cpu:+6.1f}%")


if __name__ == "__main__":
    main()
