"""The ``python`` kind: call ``module:function`` with the rendered parameters."""

from __future__ import annotations

import asyncio
import inspect
import traceback
from collections.abc import Callable
from typing import Any

from pydantic import Field

from hub.errors import TaskError
from hub.tasks.base import Params, TaskContext


class PythonParams(Params):
    function: str = Field(description="Import path, 'package.module:function'.")
    args: list[Any] = Field(default_factory=list, description="Positional arguments.")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments.")


def resolve(path: str) -> Callable[..., Any]:
    """Import ``module:attr`` (``module.attr`` also accepted); errors say what to fix."""
    from hub.llm.validation import import_object

    try:
        target = import_object(path)
    except ValueError as exc:
        raise TaskError(str(exc), retryable=False) from None
    if not callable(target):
        raise TaskError(f"{path!r} is not callable", retryable=False)
    return target  # type: ignore[no-any-return]


class Python:
    """Call your own function, sync or async; its return value is the step's output.

    A parameter named ``ctx`` receives the :class:`~hub.tasks.base.TaskContext` (for the
    idempotency key and the log). A sync function runs in a worker thread.
    """

    type = "python"
    Params = PythonParams

    async def run(self, ctx: TaskContext, params: PythonParams) -> Any:
        fn = resolve(params.function)
        kwargs = dict(params.kwargs)
        try:
            if "ctx" in inspect.signature(fn).parameters:
                kwargs["ctx"] = ctx
        except (TypeError, ValueError):
            pass
        try:
            if inspect.iscoroutinefunction(fn):
                return await fn(*params.args, **kwargs)
            result = await asyncio.to_thread(fn, *params.args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            return result
        except TaskError:
            raise
        except Exception as exc:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            error = TaskError(f"{type(exc).__name__}: {exc}", retryable=True, data={"traceback": tb})
            raise error from exc


def register(registry: Any) -> None:
    registry.add(Python)
