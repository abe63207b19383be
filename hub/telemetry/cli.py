"""``hub trace ID``: an execution's trace as a waterfall in the terminal.

    execution 0192f3...  sales.lead_enrichment  SUCCESS  1.84 s  12 spans  tokens 812/143  $0.0021
    execution sales.lead_enrichment   ██████████████████████████████  1.84 s
      step company                    ████                             210 ms
        GET                           ███                              180 ms
      step qualify                        ███████████████              920 ms  chat gpt-4o ...
"""

from __future__ import annotations

import json
from typing import Any

import click

from hub.core import attributes as A

BAR = 40
WAIT = 10.0
NAME = 38


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def _note(node: dict[str, Any]) -> str:
    attrs = node["attributes"]
    bits: list[str] = []
    if attrs.get(A.STEP_ATTEMPT, 1) != 1:
        bits.append(f"attempt {attrs[A.STEP_ATTEMPT]}")
    if A.STEP_STATE in attrs and attrs[A.STEP_STATE] != "SUCCESS":
        bits.append(str(attrs[A.STEP_STATE]))
    if A.GEN_AI_USAGE_INPUT_TOKENS in attrs or A.GEN_AI_USAGE_OUTPUT_TOKENS in attrs:
        bits.append(f"tokens {attrs.get(A.GEN_AI_USAGE_INPUT_TOKENS, 0)}/{attrs.get(A.GEN_AI_USAGE_OUTPUT_TOKENS, 0)}")
    if attrs.get(A.LLM_COST):
        bits.append(f"${attrs[A.LLM_COST]:.4f}")
    if attrs.get(A.DECIDED_BY):
        bits.append(f"decided by {attrs[A.DECIDED_BY]}")
    if node["status"] == "ERROR" and node.get("status_message"):
        bits.append(f"error: {node['status_message'][:60]}")
    return "  ".join(bits)


def _step_events(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The pure steps recorded as ``step {id}`` events on a span, as rows of the waterfall (they
    end at the event's time and last ``hub.step.duration_ms``)."""
    rows: list[dict[str, Any]] = []
    for event in node.get("events") or []:
        attrs = event.get("attributes") or {}
        if not str(event.get("name", "")).startswith("step ") or A.STEP_STATE not in attrs:
            continue
        duration = float(attrs.get(A.STEP_DURATION_MS) or 0.0)
        error = attrs.get(A.STEP_ERROR)
        rows.append({
            "name": event["name"],
            "start_time": event["time"] - duration / 1000.0,
            "duration_ms": duration,
            "status": "ERROR" if error is not None else "UNSET",
            "status_message": error,
            "attributes": attrs,
            "children": [],
        })
    return rows


def waterfall(found: dict[str, Any], width: int = BAR, color: bool = False) -> list[str]:
    """The lines of the waterfall for :func:`hub.telemetry.review.execution_trace` output."""
    usage = found["usage"]
    head = (
        f"execution {found['execution_id']}  {found['flow']}  {found['state']}  {_ms(found['duration_ms'])}  "
        f"{found['span_count']} spans"
    )
    if usage["calls"]:
        head += f"  tokens {usage['input_tokens']}/{usage['output_tokens']}  ${usage['cost']:.4f}"
    lines = [head]
    if not found.get("complete", True):
        lines.append("its last spans are not stored yet (the process that ran it may be busy or gone); run again")
    if not found["spans"]:
        lines.append("no spans stored for this execution (tracing off, not sampled, or past retention)")
        return lines
    start, total = found["start_time"], max(found["duration_ms"] or 0.0, 0.001)

    def walk(node: dict[str, Any], depth: int) -> None:
        offset = (node["start_time"] - start) * 1000.0
        first = int(offset / total * width)
        length = max(1, round(node["duration_ms"] / total * width))
        first = min(first, width - 1)
        bar = " " * first + "█" * min(length, width - first)
        label = ("  " * depth + node["name"])[:NAME].ljust(NAME)
        line = f"{label} {bar.ljust(width)} {_ms(node['duration_ms']).rjust(8)}  {_note(node)}".rstrip()
        if color and node["status"] == "ERROR":
            line = click.style(line, fg="red")
        lines.append(line)
        for child in sorted(node["children"] + _step_events(node), key=lambda n: n["start_time"]):
            walk(child, depth + 1)

    for root in found["spans"]:
        walk(root, 0)
    return lines


@click.command("trace")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True, help="Print the span tree as JSON.")
@click.option("--width", default=BAR, show_default=True, help="Width of the bars.")
@click.option("--wait", default=WAIT, show_default=True, type=click.FloatRange(0, 600), metavar="SECONDS",
              help="For an execution that ended less than this ago, wait for its spans to be written.")
def trace(execution_id: str, as_json: bool, width: int, wait: float) -> None:
    """Show the trace of an execution (id or unambiguous prefix) as a waterfall.

    The hub writes spans to its database in batches, a fraction of a second after they end; right
    after an execution ends this waits (at most --wait seconds past its end) for its last ones.
    """
    from hub.core.host import COMMANDS, lookup
    from hub.errors import HubError
    from hub.store.store import Store
    from hub.telemetry.review import execution_trace

    store = Store.from_settings(lookup(COMMANDS).settings())
    try:
        found = execution_trace(store, execution_id, wait=wait)
    except HubError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(found, indent=2, default=str))
        return
    for line in waterfall(found, width, color=True):
        click.echo(line)
