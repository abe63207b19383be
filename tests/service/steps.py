"""Functions the API tests call from flows through the ``python`` task."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

CALLS: dict[str, int] = {}


async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slept"


def fail_while(flag: str) -> str:
    """Fails while the file ``flag`` exists (a test removes it to let a restart pass)."""
    if Path(flag).exists():
        raise ValueError(f"{flag} exists")
    return "ok"


def count(name: str, value: Any = None) -> dict[str, Any]:
    CALLS[name] = CALLS.get(name, 0) + 1
    return {"calls": CALLS[name], "value": value}
