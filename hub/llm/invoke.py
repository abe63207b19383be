"""The ``langchain.invoke`` task kind: run any LangChain Runnable, its model calls recorded.

Model calls made inside the Runnable (a chat model or an LLM of LangChain's) are recorded like
``llm.chat``'s: a row in ``llm_calls`` and a GenAI span each, through a callback handler
(:mod:`hub.llm.langchain_calls`).
"""

from __future__ import annotations

import inspect
import json
from typing import Any

from pydantic import BaseModel, Field

from hub.core.imports import import_object
from hub.core.tasks import Params, TaskContext
from hub.errors import HubError, TaskError


class LangchainParams(Params):
    runnable: str = Field(description="Import path of a Runnable, or of a function that returns one.")
    input: Any = Field(None, description="The input passed to invoke (rendered).")
    config: dict[str, Any] | None = Field(None, description="RunnableConfig: tags, metadata, run_name, ...")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="Arguments for a factory function.")


class LangchainInvoke:
    """Run a LangChain Runnable (a chain, a retriever, ...) with the rendered input.

    Sync and async runnables both work (``ainvoke``); messages, documents and other pydantic
    objects in the result become plain JSON.
    """

    type = "langchain.invoke"
    Params = LangchainParams

    async def run(self, ctx: TaskContext, params: LangchainParams) -> Any:
        from langchain_core.runnables import Runnable

        try:
            target = import_object(params.runnable)
        except ValueError as exc:
            raise TaskError(str(exc), retryable=False) from None
        if not isinstance(target, Runnable):
            if not callable(target):
                raise TaskError(f"{params.runnable!r} is neither a Runnable nor a function returning one", retryable=False)
            try:
                target = target(**params.kwargs)
                if inspect.isawaitable(target):
                    target = await target
            except TypeError as exc:
                raise TaskError(
                    f"{params.runnable!r} is not a Runnable, and calling it as a factory failed: {exc}",
                    retryable=False,
                ) from None
            if not isinstance(target, Runnable):
                raise TaskError(f"{params.runnable!r} returned {type(target).__name__}, not a Runnable", retryable=False)
        config = dict(params.config or {})
        config.setdefault("metadata", {}).update({"hub_execution_id": ctx.execution_id, "hub_step": ctx.path})
        config["callbacks"] = [*(config.get("callbacks") or []), _recorder(ctx)]
        try:
            result = await target.ainvoke(params.input, config=config)  # type: ignore[arg-type]
        except HubError:
            raise
        except Exception as exc:
            raise TaskError(f"{params.runnable}: {type(exc).__name__}: {exc}", retryable=True) from exc
        return to_jsonable(result)


def _recorder(ctx: TaskContext) -> Any:
    """The callback handler that records the Runnable's model calls (see :mod:`hub.llm.langchain_calls`)."""
    from hub.llm.client import default_client
    from hub.llm.langchain_calls import CallRecorder
    from hub.llm.records import CallLog
    from hub.llm.services import LLM_CLIENT

    log = CallLog.for_store(ctx.store) if ctx.store is not None else None
    return CallRecorder(ctx, log, ctx.service(LLM_CLIENT) or default_client())


def to_jsonable(value: Any) -> Any:
    """Plain JSON from what a Runnable returns (messages, documents, pydantic models, ...)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [to_jsonable(v) for v in value]
    if isinstance(value, BaseModel):
        return to_jsonable(value.model_dump(mode="json", exclude_none=True))
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)
