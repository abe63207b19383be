"""Retry decisions: which errors, how many attempts, how long to wait."""

from __future__ import annotations

import random
from typing import Any

from hub.flow.models import RetryPolicy


def backoff(policy: RetryPolicy, attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    if policy.type == "constant":
        delay = policy.interval
    else:
        delay = policy.interval * policy.multiplier ** (attempt - 1)
    if policy.max_interval is not None:
        delay = min(delay, policy.max_interval)
    if policy.jitter:
        spread = delay * policy.jitter
        delay += (rng or random).uniform(-spread, spread)
    return max(0.0, delay)


def should_retry(
    policy: RetryPolicy | None, error: dict[str, Any], attempt: int, elapsed: float, delay: float
) -> bool:
    if policy is None or not error.get("retryable", False):
        return False
    if attempt >= policy.max_attempts:
        return False
    return policy.max_duration is None or elapsed + delay <= policy.max_duration
