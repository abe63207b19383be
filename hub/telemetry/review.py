"""Reading stored traces back: an execution's span tree, its token and cost summary."""

from __future__ import annotations

import time
from typing import Any

from hub.core import attributes as A
from hub.store.store import Store
from hub.telemetry import spanstore


def span_tree(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Nest span rows under their parents (a span whose parent is not stored is a root).

    Each node: name, ids, kind, start/end/duration, offset_ms from the trace start, status,
    attributes, events, links and ``children`` (by start time).
    """
    if not rows:
        return []
    origin = min(r["start_time"] for r in rows)
    nodes: dict[str, dict[str, Any]] = {}
    for r in rows:
        nodes[r["span_id"]] = {
            "name": r["name"],
            "span_id": r["span_id"],
            "parent_span_id": r["parent_span_id"],
            "kind": r["kind"],
            "service": r.get("service"),
            "start_time": r["start_time"],
            "end_time": r["end_time"],
            "offset_ms": round((r["start_time"] - origin) * 1000.0, 3),
            "duration_ms": r["duration_ms"],
            "status": r["status"],
            "status_message": r["status_message"],
            "attributes": r["attributes"] or {},
            "events": r["events"] or [],
            "links": r["links"] or [],
            "children": [],
        }
    roots: list[dict[str, Any]] = []
    for node in sorted(nodes.values(), key=lambda n: n["start_time"]):
        parent = nodes.get(node["parent_span_id"] or "")
        (parent["children"] if parent is not None else roots).append(node)
    return roots


def usage_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Tokens, cost and model calls summed over the LLM spans of a trace, overall and by model."""
    total = {"input_tokens": 0, "output_tokens": 0, "cost": 0.0, "calls": 0, "repair_attempts": 0}
    by_model: dict[str, dict[str, Any]] = {}
    for r in rows:
        attrs = r["attributes"] or {}
        if A.GEN_AI_OPERATION_NAME not in attrs or A.GEN_AI_REQUEST_MODEL not in attrs:
            continue
        model = str(attrs.get(A.GEN_AI_RESPONSE_MODEL) or attrs[A.GEN_AI_REQUEST_MODEL])
        entry = by_model.setdefault(model, {"input_tokens": 0, "output_tokens": 0, "cost": 0.0, "calls": 0})
        for bucket in (total, entry):
            bucket["input_tokens"] += int(attrs.get(A.GEN_AI_USAGE_INPUT_TOKENS) or 0)
            bucket["output_tokens"] += int(attrs.get(A.GEN_AI_USAGE_OUTPUT_TOKENS) or 0)
            bucket["cost"] += float(attrs.get(A.LLM_COST) or 0.0)
            bucket["calls"] += 1
        total["repair_attempts"] += int(attrs.get(A.LLM_REPAIR_ATTEMPTS) or 0)
    total["cost"] = round(total["cost"], 8)
    return {**total, "by_model": by_model}


WAIT_POLL = 0.1


def _pending(execution: dict[str, Any], rows: list[dict[str, Any]]) -> bool:
    """True while an ended, traced execution's last run has no stored span yet: the span that
    ends the run ends after the row's final write, and the exporters write it a moment later."""
    ended = execution.get("ended_at")
    if ended is None or not execution.get("trace_id") or not execution.get("span_id"):
        return False  # running or paused, not traced, or sampled out (no span id): nothing to wait for
    return not any(r["end_time"] >= ended - 0.001 for r in rows)


def execution_trace(store: Store, execution_id: str, wait: float = 0.0) -> dict[str, Any]:
    """Everything the viewer shows for one execution (raises NotFound for an unknown id).

    ``wait``: an execution that ended less than ``wait`` seconds ago and whose final spans are
    not stored yet is read again until they are, at most until ``wait`` seconds after its end.
    ``complete`` in the answer is False while they are missing.
    """
    execution = store.find_execution(execution_id)
    trace_id = execution.get("trace_id")
    rows = spanstore.trace_spans(store.engine, trace_id) if trace_id else []
    deadline = (execution.get("ended_at") or 0.0) + wait
    while _pending(execution, rows) and time.time() < deadline:
        time.sleep(min(WAIT_POLL, max(0.0, deadline - time.time())))
        rows = spanstore.trace_spans(store.engine, trace_id) if trace_id else []
    start = min((r["start_time"] for r in rows), default=None)
    end = max((r["end_time"] for r in rows), default=None)
    return {
        "execution_id": execution["id"],
        "flow": f"{execution['namespace']}.{execution['flow_id']}",
        "state": execution["state"],
        "trace_id": trace_id,
        "complete": not _pending(execution, rows),
        "start_time": start,
        "end_time": end,
        "duration_ms": round((end - start) * 1000.0, 3) if start is not None and end is not None else None,
        "span_count": len(rows),
        "errors": sum(1 for r in rows if r["status"] == "ERROR"),
        "usage": usage_summary(rows),
        "spans": span_tree(rows),
    }
