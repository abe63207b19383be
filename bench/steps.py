"""Functions the benchmarks call from ``python`` steps: they do nothing, so what a step costs is
the hub's own time (render, validate, checkpoint, call, record)."""

from __future__ import annotations

from typing import Any


def echo(value: Any) -> Any:
    return {"value": value}


async def aecho(value: Any) -> Any:
    return {"value": value}
