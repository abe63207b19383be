"""Core leaf kinds: ``log``, ``set``, ``fail``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from hub.errors import FailTask
from hub.tasks.base import Params, TaskContext


class LogParams(Params):
    message: Any
    level: Literal["debug", "info", "warning", "error"] = "info"


class Log:
    """Write a message to the execution log. Output: ``{"message": ...}``."""

    type = "log"
    Params = LogParams
    pure = True

    async def run(self, ctx: TaskContext, params: LogParams) -> Any:
        message = params.message if isinstance(params.message, str) else str(params.message)
        ctx.log(message, params.level)
        return {"message": ctx.redact(message)}


class SetParams(Params):
    values: dict[str, Any] = Field(description="Named values (expressions keep their type).")


class Set:
    """Compute named values. Output: the ``values`` mapping, rendered."""

    type = "set"
    Params = SetParams
    pure = True

    async def run(self, ctx: TaskContext, params: SetParams) -> Any:
        return params.values


class FailParams(Params):
    message: str = "failed on purpose"


class Fail:
    """Fail the execution with a message (not retried)."""

    type = "fail"
    Params = FailParams
    pure = True

    async def run(self, ctx: TaskContext, params: FailParams) -> Any:
        raise FailTask(params.message)

