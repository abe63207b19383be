"""The litellm transport: every provider litellm knows (Anthropic, Bedrock, Vertex, Azure, ...) and
``mock_response`` aliases. The hub's only import of litellm, made off the event loop on first use
(it takes seconds and reads its price map from the package, never the network)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from hub.llm.settings import ModelSpec
from hub.llm.transports import (
    OnToken,
    ProviderFailure,
    Reply,
    StreamAssembly,
    api_key,
    retry_after,
    status_kind,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def litellm_module() -> Any:
    """Import litellm (seconds on first use) with the hub's process-wide defaults."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # a sampling parameter a provider lacks is dropped, not fatal
    return litellm


class Litellm:
    """Every provider litellm knows, one attempt per call (the client retries)."""

    @staticmethod
    def _kwargs(spec: ModelSpec, timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": spec.model, "timeout": timeout, "num_retries": 0, "max_retries": 0}
        if spec.api_base:
            kwargs["api_base"] = spec.api_base
        key = api_key(spec)
        if key:
            kwargs["api_key"] = key
        if spec.mock_response is not None:
            kwargs["mock_response"] = spec.mock_response
        if spec.has_price:  # litellm's own cost bookkeeping agrees with ours and skips its price lookup
            kwargs["input_cost_per_token"] = spec.input_cost_per_token or 0.0
            kwargs["output_cost_per_token"] = spec.output_cost_per_token or 0.0
        return kwargs

    async def chat(
        self, spec: ModelSpec, messages: list[dict[str, Any]], params: dict[str, Any], timeout: float,
        on_token: OnToken | None = None,
    ) -> Reply:
        litellm = await imported_litellm()
        kwargs = {**params, **self._kwargs(spec, timeout), "messages": messages}
        if on_token is not None:
            kwargs.update(stream=True, stream_options={"include_usage": True})
        try:
            response = await litellm.acompletion(**kwargs)
            if on_token is not None:
                return await self._streamed(spec, response, on_token)
        except Exception as exc:  # litellm raises its own hierarchy; classify once, here
            raise self._failure(litellm, exc, timeout) from exc
        hidden = getattr(response, "_hidden_params", {}) or {}
        usage = getattr(response, "usage", None)
        choice = response.choices[0]
        calls = [
            {"id": call.id or f"call_{n}", "name": call.function.name, "arguments": call.function.arguments or ""}
            for n, call in enumerate(getattr(choice.message, "tool_calls", None) or [])
        ]
        return Reply(
            text=choice.message.content or "",
            model=str(response.model or spec.model),
            provider=hidden.get("custom_llm_provider"),
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            finish_reason=getattr(choice, "finish_reason", None),
            cost=float(hidden.get("response_cost") or 0.0),
            tool_calls=calls,
        )

    @staticmethod
    async def _streamed(spec: ModelSpec, response: Any, on_token: OnToken) -> Reply:
        """A litellm stream read chunk by chunk (its chunks have OpenAI's shape)."""
        assembly = StreamAssembly(on_token)
        provider = None
        async for chunk in response:
            provider = provider or (getattr(chunk, "_hidden_params", {}) or {}).get("custom_llm_provider")
            assembly.add(chunk.model_dump(exclude_none=True) if hasattr(chunk, "model_dump") else dict(chunk))
        return Reply(
            text="".join(assembly.text),
            model=str(assembly.model or spec.model),
            provider=provider,
            input_tokens=int(assembly.usage.get("prompt_tokens") or 0),
            output_tokens=int(assembly.usage.get("completion_tokens") or 0),
            finish_reason=assembly.finish_reason,
            tool_calls=assembly.tool_calls(),
        )

    async def embed(self, spec: ModelSpec, texts: list[str], timeout: float) -> tuple[list[list[float]], int]:
        litellm = await imported_litellm()
        kwargs = self._kwargs(spec, timeout)
        kwargs.pop("mock_response", None)
        try:
            response = await litellm.aembedding(input=texts, **kwargs)
        except Exception as exc:
            raise self._failure(litellm, exc, timeout) from exc
        data = response["data"] if isinstance(response, dict) else response.data
        usage = getattr(response, "usage", None)
        vectors = [list(d["embedding"] if isinstance(d, dict) else d.embedding) for d in data]
        return vectors, int(getattr(usage, "prompt_tokens", 0) or 0)

    @staticmethod
    def _failure(litellm: Any, exc: Exception, timeout: float) -> ProviderFailure:
        detail = str(exc).replace("\n", " ")[:500]
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
        wait = retry_after(headers) if headers is not None else None
        if isinstance(exc, litellm.ContextWindowExceededError):
            return ProviderFailure("context", detail, status)
        if isinstance(exc, litellm.Timeout | asyncio.TimeoutError):
            return ProviderFailure("timeout", f"no answer within {timeout:g}s: {detail}")
        if isinstance(exc, litellm.AuthenticationError | litellm.PermissionDeniedError):
            return ProviderFailure("auth", detail, status or 401)
        if isinstance(exc, litellm.RateLimitError):
            return ProviderFailure("rate_limit", detail, 429, wait)
        if (isinstance(exc, litellm.APIConnectionError) and status is None) or _never_connected(exc):
            return ProviderFailure("connection", detail)
        if status is None:
            return ProviderFailure("server", detail)
        return ProviderFailure(status_kind(status, detail, None), detail, status, wait)


async def imported_litellm() -> Any:
    """litellm, its slow first import run off the event loop."""
    import sys

    module = sys.modules.get("litellm")
    if module is not None and getattr(module, "acompletion", None) is not None:
        return litellm_module()
    return await asyncio.to_thread(litellm_module)


def _never_connected(exc: BaseException) -> bool:
    """Whether a connection failure lies under ``exc`` (litellm reports some as a 500)."""
    import openai

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError | openai.APIConnectionError) and not isinstance(
            current, openai.APITimeoutError
        ):
            return True
        if type(current).__name__ in ("ConnectError", "ClientConnectorError", "ServerDisconnectedError"):
            return True
        current = current.__cause__ or current.__context__
    return False


def price_map(model: str) -> tuple[float, float] | None:
    """USD per input and output token from litellm's price map, or None when it has no entry."""
    litellm = litellm_module()
    for name in (model, model.split("/", 1)[-1]):
        try:
            info = litellm.get_model_info(name)
        except Exception:  # litellm raises a bare Exception for an unmapped model
            continue
        return float(info.get("input_cost_per_token") or 0.0), float(info.get("output_cost_per_token") or 0.0)
    return None
