"""Functions the bus tests' flows call (``python`` task)."""

from __future__ import annotations

import asyncio


async def slow(seconds: float) -> dict[str, float]:
    """A step that stays RUNNING for ``seconds``."""
    await asyncio.sleep(seconds)
    return {"slept": seconds}
