"""A bus trigger whose broker stays away: every failure is kept for GET /v1/triggers, the log
says it once (again only when it changes), and the waits between attempts grow."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.bus.consume import Backoff, run_source

pytestmark = pytest.mark.anyio


class Unreachable:
    """A source whose broker refuses the first ``refusals`` connections with ``errors`` in turn."""

    def __init__(self, errors: list[str], stopping: asyncio.Event):
        self.errors, self.stopping, self.attempts = errors, stopping, 0

    async def connect(self) -> None:
        self.attempts += 1
        if self.attempts > len(self.errors):
            self.stopping.set()
            raise ConnectionError("stopping")
        raise ConnectionError(self.errors[self.attempts - 1])

    async def close(self) -> None:
        return None


class Context:
    def __init__(self) -> None:
        self.bound = SimpleNamespace(name="orders.flow/bus")
        self.engine: Any = None
        self.stopping = asyncio.Event()
        self.failures: list[str] = []

    def ok(self) -> None:
        self.failures.append("ok")

    def failed(self, message: str) -> None:
        self.failures.append(message)


async def test_a_failure_that_repeats_is_logged_once_and_kept_for_the_status(caplog: pytest.LogCaptureFixture) -> None:
    ctx = Context()
    source = Unreachable(["refused"] * 4 + ["no route"] * 2, ctx.stopping)
    backoff = Backoff(initial=0.001, maximum=0.004, jitter=0)
    with caplog.at_level(logging.DEBUG, logger="connectors.bus.consume"):
        await asyncio.wait_for(run_source(ctx, source, backoff), timeout=10)  # type: ignore[arg-type]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "trigger orders.flow/bus: ConnectionError: refused; reconnecting with backoff",
        "trigger orders.flow/bus: ConnectionError: no route; reconnecting with backoff",
        "trigger orders.flow/bus: ConnectionError: stopping; reconnecting with backoff",
    ]
    assert ctx.failures.count("ConnectionError: refused") == 4  # every attempt reaches the trigger's status
    assert backoff.attempt == 7
