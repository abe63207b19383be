"""Model calls made inside a LangChain Runnable, recorded like ``llm.chat``'s.

``langchain.invoke`` passes a :class:`CallRecorder` in the Runnable's callbacks. Each chat model
or LLM call inside it (however deep in the chain) becomes a ``chat {model}`` GenAI span, child of
the step's span, and a row in ``llm_calls`` with the step's execution, path and attempt, the model,
tokens (when the model reports usage), cost (the alias's prices or litellm's price map) and
latency.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler

from hub.core.tracing import TRACING, ModelCall, lookup
from hub.errors import error_dict

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

    from hub.llm.client import LLMClient
    from hub.llm.records import CallLog
    from hub.tasks.base import TaskContext


class _Open:
    def __init__(self, model: str, request: Any, span: ModelCall, trace_id: str | None):
        self.model, self.request, self.span, self.trace_id = model, request, span, trace_id
        self.started = time.perf_counter()


class CallRecorder(AsyncCallbackHandler):
    """A LangChain callback handler writing a call record and a GenAI span per model call."""

    def __init__(self, ctx: TaskContext, log: CallLog | None, client: LLMClient):
        self.ctx, self.log, self.client = ctx, log, client
        self.open: dict[UUID, _Open] = {}
        self.rounds = 0

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        request = [[{"role": getattr(m, "type", "user"), "content": getattr(m, "content", str(m))} for m in batch]
                   for batch in messages]
        self._start(run_id, serialized, kwargs, request)

    async def on_llm_start(self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any) -> None:
        self._start(run_id, serialized, kwargs, prompts)

    def _start(self, run_id: UUID, serialized: dict[str, Any], kwargs: dict[str, Any], request: Any) -> None:
        model = _model_name(serialized, kwargs)
        # started here and ended by the end callback: not made current, its parent is the step's span
        span = lookup(TRACING).start_model_call(model, self.ctx.redact)
        self.open[run_id] = _Open(model, request, span, span.trace_id)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self.open.pop(run_id, None)
        if call is None:
            return
        tokens_in, tokens_out = _usage(response)
        cost = await self.client.cost_of(call.model, tokens_in, tokens_out)
        text = "\n".join(g.text for batch in response.generations for g in batch)
        call.span.record_response(input_tokens=tokens_in, output_tokens=tokens_out, cost=cost, output=text)
        call.span.end()
        self._record(call, "ok", tokens_in=tokens_in, tokens_out=tokens_out, cost=cost, response=text)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self.open.pop(run_id, None)
        if call is None:
            return
        call.span.fail(error)
        self._record(call, "error", errors=[error_dict(error)])

    def _record(self, call: _Open, status: str, *, tokens_in: int = 0, tokens_out: int = 0, cost: float = 0.0,
                response: str | None = None, errors: list[Any] | None = None) -> None:
        self.rounds += 1
        if self.log is None:
            return
        self.log.record(
            execution_id=self.ctx.execution_id, path=self.ctx.path, task_id=self.ctx.task_id,
            attempt=self.ctx.attempt, round=self.rounds, status=status, model_requested=call.model,
            model=call.model, litellm_model=call.model, input_tokens=tokens_in, output_tokens=tokens_out, cost=cost,
            latency_ms=(time.perf_counter() - call.started) * 1000,
            request=self.ctx.redact({"messages": call.request}), response=self.ctx.redact(response),
            errors=errors, trace_id=call.trace_id,
        )


def _model_name(serialized: dict[str, Any], kwargs: dict[str, Any]) -> str:
    params = kwargs.get("invocation_params") or {}
    for key in ("model_name", "model", "model_id", "deployment_name"):
        if isinstance(params.get(key), str):
            return str(params[key])
    for key in ("model_name", "model"):
        value = (serialized.get("kwargs") or {}).get(key)
        if isinstance(value, str):
            return value
    ids = serialized.get("id") or []
    return str(ids[-1]) if ids else str(serialized.get("name") or "langchain")


def _usage(response: LLMResult) -> tuple[int, int]:
    """Input and output tokens: the messages' ``usage_metadata``, else ``llm_output.token_usage``."""
    tokens_in = tokens_out = 0
    for batch in response.generations:
        for generation in batch:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
            tokens_in += int(usage.get("input_tokens") or 0)
            tokens_out += int(usage.get("output_tokens") or 0)
    if not tokens_in and not tokens_out:
        usage = (response.llm_output or {}).get("token_usage") or {}
        tokens_in = int(usage.get("prompt_tokens") or 0)
        tokens_out = int(usage.get("completion_tokens") or 0)
    return tokens_in, tokens_out
