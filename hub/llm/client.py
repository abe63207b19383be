"""The litellm adapter: the one module of the hub that imports litellm (lazily, it is slow).

:class:`LLMClient` turns model aliases (see :mod:`hub.llm.settings`) into a litellm ``Router``:
one model group per alias, a timeout on every request, retries with backoff on rate limits,
server errors and timeouts, fallbacks to other aliases when an alias keeps failing, and
context-window fallbacks when the messages do not fit. A model name that is not an alias
(``openai/gpt-4o-mini``) gets a group of its own on first use.

Provider failures come out as hub errors: :class:`~hub.errors.ConnectorError` with the status
(429 and 5xx retryable), :class:`LLMTimeout`, :class:`ContextWindowExceeded`.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from hub.errors import ConnectorError, TaskError
from hub.llm.settings import LLMSettings, ModelsConfig, ModelSpec

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def litellm_module() -> Any:
    """Import litellm (seconds on first use) with the hub's process-wide defaults."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True  # a sampling parameter a provider lacks is dropped, not fatal
    return litellm


class LLMTimeout(TaskError):
    """The provider did not answer within the timeout (after the retries)."""

    def __init__(self, message: str):
        super().__init__(message, retryable=True)


class ContextWindowExceeded(TaskError):
    """The messages do not fit the model, and no context-window fallback took them."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


@dataclass
class Completion:
    """One answered request: the text, who answered and what it cost."""

    text: str
    model_requested: str
    model: str
    litellm_model: str
    provider: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float
    retries: int = 0
    fallbacks: int = 0
    finish_reason: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def fallback_used(self) -> bool:
        return self.fallbacks > 0 or self.model != self.model_requested

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "model_requested": self.model_requested,
            "model": self.model,
            "litellm_model": self.litellm_model,
            "provider": self.provider,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": self.cost,
            "latency_ms": self.latency_ms,
            "retries": self.retries,
            "fallbacks": self.fallbacks,
            "finish_reason": self.finish_reason,
        }


@dataclass
class Embeddings:
    """One answered embedding request: a vector per text, and what it cost."""

    vectors: list[list[float]]
    litellm_model: str
    input_tokens: int
    cost: float
    latency_ms: float


class LLMClient:
    """Calls models by alias. Build once per process; share it through ``ctx.services["llm"]``."""

    def __init__(self, settings: LLMSettings | None = None, config: ModelsConfig | None = None):
        self.settings = settings or LLMSettings()
        self.config = config if config is not None else self.settings.load_models()
        self._extra: dict[str, ModelSpec] = {}
        self._router: Any = None
        self._lock = threading.Lock()

    @property
    def default_model(self) -> str | None:
        return self.config.default

    def spec(self, name: str) -> ModelSpec:
        """The alias ``name``, or an ad-hoc spec for a plain litellm model name."""
        if name in self.config.models:
            return self.config.models[name]
        if name not in self._extra:
            self._extra[name] = ModelSpec(model=name, api_base=self.settings.api_base, api_key=self.settings.api_key)
        return self._extra[name]

    def _model_list(self) -> list[dict[str, Any]]:
        entries = []
        for name, spec in [*self.config.models.items(), *self._extra.items()]:
            params: dict[str, Any] = {"model": spec.model, "timeout": spec.timeout or self.settings.timeout}
            if spec.api_base:
                params["api_base"] = spec.api_base
            key = os.environ.get(spec.api_key_env) if spec.api_key_env else spec.api_key
            if key:
                params["api_key"] = key
            if spec.mock_response is not None:
                params["mock_response"] = spec.mock_response
            if spec.input_cost_per_token is not None or spec.output_cost_per_token is not None:
                # litellm's own cost tracking then agrees with ours (and skips its unknown-price checks)
                params["input_cost_per_token"] = spec.input_cost_per_token or 0.0
                params["output_cost_per_token"] = spec.output_cost_per_token or 0.0
            entries.append({"model_name": name, "litellm_params": params, "model_info": {"id": name}})
        return entries

    def _build_router(self) -> Any:
        litellm = litellm_module()
        fallbacks = [{n: s.fallbacks} for n, s in self.config.models.items() if s.fallbacks]
        window = [
            {n: s.context_window_fallbacks if s.context_window_fallbacks is not None else s.fallbacks}
            for n, s in self.config.models.items()
            if s.context_window_fallbacks or s.fallbacks
        ]
        return litellm.Router(
            model_list=self._model_list(),
            num_retries=self.settings.num_retries,
            timeout=self.settings.timeout,
            fallbacks=fallbacks,
            context_window_fallbacks=window,
            # every alias is one deployment: cooling it down would only turn a retry into a failure
            disable_cooldowns=True,
        )

    async def router(self, model: str) -> Any:
        if self._router is None and "litellm" not in sys.modules:
            await asyncio.to_thread(litellm_module)  # the slow first import stays off the event loop
        with self._lock:
            known = model in self.config.models or model in self._extra
            self.spec(model)
            if self._router is None or not known:
                self._router = self._build_router()
            return self._router

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        params: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Completion:
        """Ask ``model`` (an alias or a litellm model name); raises hub errors on failure."""
        router = await self.router(model)
        spec = self.spec(model)
        kwargs = {**spec.params, **(params or {})}
        kwargs["timeout"] = timeout or spec.timeout or self.settings.timeout
        started = time.perf_counter()
        try:
            response = await router.acompletion(model=model, messages=messages, **kwargs)
        except Exception as exc:  # litellm raises its own hierarchy; translate once, here
            raise self._error(exc, model, kwargs["timeout"]) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        return self._completion(model, response, latency_ms)

    async def embed(self, model: str, texts: list[str], timeout: float | None = None) -> Embeddings:
        """Embeddings of ``texts`` from ``model`` (an alias or a litellm model name), through the
        same router: the alias's provider, key, base URL, timeout and retries."""
        router = await self.router(model)
        spec = self.spec(model)
        timeout = timeout or spec.timeout or self.settings.timeout
        started = time.perf_counter()
        try:
            response = await router.aembedding(model=model, input=texts, timeout=timeout)
        except Exception as exc:
            raise self._error(exc, model, timeout) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        data = response["data"] if isinstance(response, dict) else response.data
        usage = getattr(response, "usage", None)
        tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        return Embeddings(
            vectors=[list(d["embedding"] if isinstance(d, dict) else d.embedding) for d in data],
            litellm_model=spec.model,
            input_tokens=tokens,
            cost=self._cost(spec, response, tokens, 0),
            latency_ms=latency_ms,
        )

    @staticmethod
    def _cost(spec: ModelSpec | None, response: Any, tokens_in: int, tokens_out: int) -> float:
        """USD: the alias's own prices when it has them, else litellm's price map."""
        if spec is not None and spec.has_price:
            return spec.cost(tokens_in, tokens_out)
        hidden = getattr(response, "_hidden_params", {}) or {}
        return float(hidden.get("response_cost") or 0.0)

    def _completion(self, requested: str, response: Any, latency_ms: float) -> Completion:
        hidden = getattr(response, "_hidden_params", {}) or {}
        headers = hidden.get("additional_headers") or {}
        answered = str(hidden.get("model_id") or headers.get("x-litellm-model-group") or requested)
        spec = self.spec(answered) if answered in self.config.models or answered in self._extra else None
        usage = getattr(response, "usage", None)
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = self._cost(spec, response, tokens_in, tokens_out)
        choice = response.choices[0]
        return Completion(
            text=choice.message.content or "",
            model_requested=requested,
            model=answered,
            litellm_model=str(hidden.get("litellm_model_name") or (spec.model if spec else response.model)),
            provider=hidden.get("custom_llm_provider"),
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost=cost,
            latency_ms=latency_ms,
            retries=int(headers.get("x-litellm-attempted-retries") or 0),
            fallbacks=int(headers.get("x-litellm-attempted-fallbacks") or 0),
            finish_reason=getattr(choice, "finish_reason", None),
        )

    @staticmethod
    def _error(exc: Exception, model: str, timeout: float) -> Exception:
        litellm = litellm_module()
        detail = str(exc).replace("\n", " ")[:500]
        if isinstance(exc, litellm.ContextWindowExceededError):
            return ContextWindowExceeded(
                f"model {model!r}: the messages do not fit its context window and no fallback took them; "
                f"shorten the input or add context_window_fallbacks ({detail})"
            )
        if isinstance(exc, litellm.Timeout | asyncio.TimeoutError):
            return LLMTimeout(f"model {model!r} did not answer within {timeout:g}s (after retries): {detail}")
        status = getattr(exc, "status_code", None)
        status = status if isinstance(status, int) else None
        if isinstance(exc, litellm.AuthenticationError):
            return ConnectorError(
                f"model {model!r}: the provider rejected the API key; set it (api_key_env in the models file) ({detail})",
                status=status or 401,
                retryable=False,
            )
        if isinstance(exc, litellm.RateLimitError):
            return ConnectorError(f"model {model!r} is rate limited (after retries): {detail}", status=429)
        if isinstance(exc, litellm.APIConnectionError) and status is None:
            return ConnectorError(f"model {model!r}: cannot reach the provider: {detail}", retryable=True)
        return ConnectorError(f"model {model!r} failed: {detail}", status=status)


_DEFAULT: LLMClient | None = None


def default_client() -> LLMClient:
    """A process-wide client from the environment (when no ``llm`` service was given)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = LLMClient()
    return _DEFAULT
