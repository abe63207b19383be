"""``sample.greet``: a greeting, in the step's log and as its output."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class GreetParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    punctuation: str = "!"


class Greet:
    """Greet someone by name."""

    type = "sample.greet"
    Params = GreetParams

    async def run(self, ctx: Any, params: GreetParams) -> Any:
        text = f"Hello, {params.name}{params.punctuation}"
        ctx.log(text)
        return {"text": text, "execution": ctx.execution_id}
