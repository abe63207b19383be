"""``sample.ticker``: starts one execution per tick, ``count`` ticks, ``every`` seconds apart."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar, Literal

from pydantic import Field

from hub.core.models import TriggerBase


class TickerConfig(TriggerBase):
    type: Literal["sample.ticker"]
    count: int = Field(3, ge=1)
    every: float = Field(0.05, gt=0)


class Ticker:
    type: ClassVar[str] = "sample.ticker"
    Config = TickerConfig
    leader_only: ClassVar[bool] = True

    async def run(self, ctx: Any) -> None:
        for n in range(ctx.config.count):
            await ctx.fire({"tick": n}, key=f"tick-{n}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ctx.stopping.wait(), ctx.config.every)
            if ctx.stopping.is_set():
                return
        await ctx.stopping.wait()
