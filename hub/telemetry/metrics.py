"""The hub's metric instruments (OpenTelemetry metrics API), created once per meter provider."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics

from hub.core import attributes as A


@dataclass
class Instruments:
    executions: Any
    step_duration: Any
    queue_wait: Any
    token_usage: Any
    operation_duration: Any
    llm_cost: Any


_cache: dict[int, Instruments] = {}


def instruments(meter_provider: metrics.MeterProvider | None = None) -> Instruments:
    """The instruments on ``meter_provider`` (default: the global one)."""
    key = id(meter_provider)
    found = _cache.get(key)
    if found is not None:
        return found
    meter = metrics.get_meter(A.TRACER_NAME, meter_provider=meter_provider)
    made = Instruments(
        executions=meter.create_counter(
            A.METRIC_EXECUTIONS, unit="{execution}",
            description="Execution runs that ended (or paused), by flow and state.",
        ),
        step_duration=meter.create_histogram(
            A.METRIC_STEP_DURATION, unit="s", description="Duration of step attempts.",
            explicit_bucket_boundaries_advisory=A.DURATION_BUCKETS,
        ),
        queue_wait=meter.create_histogram(
            A.METRIC_QUEUE_WAIT, unit="s", description="Time from an execution's creation to its first run.",
            explicit_bucket_boundaries_advisory=A.DURATION_BUCKETS,
        ),
        token_usage=meter.create_histogram(
            A.METRIC_TOKEN_USAGE, unit="{token}", description="Input and output tokens per model call.",
            explicit_bucket_boundaries_advisory=A.TOKEN_BUCKETS,
        ),
        operation_duration=meter.create_histogram(
            A.METRIC_OPERATION_DURATION, unit="s", description="Duration of model calls.",
            explicit_bucket_boundaries_advisory=A.DURATION_BUCKETS,
        ),
        llm_cost=meter.create_counter(A.METRIC_LLM_COST, unit="USD", description="Cost of model calls."),
    )
    _cache[key] = made
    return made
