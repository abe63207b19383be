"""Time charts as data for the templates: the Gantt of an execution's step runs (attempts, the
waits between retries, pauses) and the waterfall of its trace's spans."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from hub.core import attributes as A

GENAI_SHOWN = (
    (A.GEN_AI_PROMPT_NAME, "prompt"), (A.PROMPT_VERSION, "version"), (A.GEN_AI_REQUEST_MODEL, "model"),
    (A.GEN_AI_RESPONSE_MODEL, "answered by"), (A.GEN_AI_USAGE_INPUT_TOKENS, "tokens in"),
    (A.GEN_AI_USAGE_OUTPUT_TOKENS, "tokens out"), (A.LLM_COST, "cost"),
)


@dataclass
class Bar:
    kind: str  # a step state (SUCCESS, FAILED, ...) or "wait" (between attempts) or "pause"
    left: float  # percent of the chart
    width: float
    start: float
    end: float | None
    label: str
    attempt: int | None = None


@dataclass
class Row:
    path: str
    type: str
    depth: int
    state: str
    attempts: int
    bars: list[Bar] = field(default_factory=list)


@dataclass
class Chart:
    rows: list[Row]
    start: float
    span: float  # seconds the chart covers
    ticks: list[tuple[float, str]]


def _depth(path: str, depths: dict[str, int]) -> int:
    """How deep a step sits: from the flow's structure (paths are step ids, ``id[3]`` in loops)."""
    base = re.sub(r"\[\d+\]", "", path).rsplit(".", 1)[-1]
    if base in depths:
        return depths[base] + path.count("[")
    return path.count(".") + path.count("[")


def _ticks(span: float) -> list[tuple[float, str]]:
    from hub.console.render import duration

    if span <= 0:
        return [(0.0, "0")]
    return [(i * 25.0, duration(span * i / 4)) for i in range(5)]


def _bar(kind: str, start: float, end: float | None, origin: float, span: float, label: str,
         attempt: int | None = None, now: float | None = None) -> Bar:
    stop = end if end is not None else (now or time.time())
    left = (start - origin) / span * 100 if span > 0 else 0.0
    width = max((stop - start) / span * 100 if span > 0 else 100.0, 0.5)
    return Bar(kind, round(max(left, 0.0), 3), round(min(width, 100.0 - min(left, 99.5)), 3), start, end, label, attempt)


def gantt(execution: dict[str, Any], steps: list[dict[str, Any]], now: float | None = None,
          depths: dict[str, int] | None = None) -> Chart:
    """One row per step path (in the order they started), one bar per attempt, a ``wait`` bar for
    the time between a failed attempt and the next, a paused step's bar marked ``pause``."""
    now = now or time.time()
    starts = [s["started_at"] for s in steps if s.get("started_at") is not None]
    origin = min([execution.get("started_at") or execution["created_at"], *starts])
    ends = [s["ended_at"] for s in steps if s.get("ended_at")]
    finish = execution.get("ended_at") or (now if execution["state"] in ("RUNNING", "PAUSED", "QUEUED") else None)
    last = max([finish or origin, *ends, *starts])
    span = max(last - origin, 1e-3)
    by_path: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_path.setdefault(step["path"], []).append(step)
    rows = []
    for path, runs in by_path.items():
        runs.sort(key=lambda r: (r["attempt"], r["id"] or 0))
        row = Row(path, runs[-1]["task_type"], _depth(path, depths or {}), runs[-1]["state"], len(runs))
        previous_end = None
        for run in runs:
            if previous_end is not None and run["started_at"] > previous_end:
                row.bars.append(_bar("wait", previous_end, run["started_at"], origin, span, "waiting to retry"))
            kind = "pause" if run["state"] == "PAUSED" else run["state"]
            end = run.get("ended_at")
            if end is None and execution["state"] not in ("RUNNING", "PAUSED"):
                end = execution.get("ended_at") or run["started_at"]
            label = f"attempt {run['attempt']}: {run['state']}"
            row.bars.append(_bar(kind, run["started_at"], end, origin, span, label, run["attempt"], now))
            previous_end = end
        rows.append(row)
    return Chart(rows, origin, span, _ticks(span))


@dataclass
class SpanRow:
    name: str
    span_id: str
    depth: int
    status: str
    left: float
    width: float
    duration_ms: float
    offset_ms: float
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    links: list[dict[str, Any]]
    genai: list[tuple[str, Any]]
    kind: str


def waterfall(trace: dict[str, Any]) -> list[SpanRow]:
    """The span tree flattened depth-first, each span placed on the trace's time line."""
    total = trace.get("duration_ms") or 0.0
    out: list[SpanRow] = []

    def walk(nodes: list[dict[str, Any]], depth: int) -> None:
        for n in nodes:
            attrs = n["attributes"] or {}
            left = n["offset_ms"] / total * 100 if total else 0.0
            width = max(n["duration_ms"] / total * 100 if total else 100.0, 0.4)
            genai = [(label, attrs[key]) for key, label in GENAI_SHOWN if key in attrs]
            out.append(SpanRow(
                n["name"], n["span_id"], depth, n["status"], round(left, 3), round(min(width, 100 - min(left, 99.6)), 3),
                n["duration_ms"], n["offset_ms"], attrs, n["events"], n["links"], genai,
                "genai" if A.GEN_AI_OPERATION_NAME in attrs else "span",
            ))
            walk(n["children"], depth + 1)

    walk(trace.get("spans") or [], 0)
    return out
